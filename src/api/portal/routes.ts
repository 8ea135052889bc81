import { Router, type Request, type Response } from "express";
import { z } from "zod";
import type { WebDeps } from "../../deps.js";
import { findCustomer } from "../../billing/customers/customers.js";
import {
  portalSecret,
  portalSession,
  signPortalLink,
  verifyPortalLink,
  type PortalRefusal,
} from "../../billing/customers/portal-links.js";
import { HttpError, notFound } from "../../errors.js";
import { chartAssets } from "../html.js";
import { parseInput } from "../input.js";
import { portalData } from "./data.js";
import { portalPage, refusedPage } from "./page.js";

type Deps = Pick<WebDeps, "db" | "config" | "stripe" | "logger">;

const REFUSALS: Record<PortalRefusal, string> = {
  malformed: "The link is incomplete.",
  expired: "The link has expired.",
  bad_signature: "The link's signature does not match.",
};

/** Where links point: PUBLIC_URL when set, else the host the request came to. */
export const publicBase = (deps: Deps, req: Request) =>
  deps.config.publicUrl ?? `${req.protocol}://${req.get("host")}`;

/**
 * The customer portal, outside admin auth: GET /portal (a page) and GET /portal/data (the same as
 * JSON), both opened by a signed link only (src/billing/customers/portal-links.ts). Read-only.
 * `frame-ancestors` comes from PORTAL_FRAME_ANCESTORS so a product can embed the page.
 */
export function portalRoutes(deps: Deps): Router {
  const router = Router();
  const secret = portalSecret(deps.config);
  if (!secret) return router;
  router.use("/portal/assets", chartAssets());

  /** The customer the link opens, or a 403 (page or JSON) and undefined. */
  const opened = (req: Request, res: Response, as: "html" | "json") => {
    res.setHeader("Content-Security-Policy", `frame-ancestors ${deps.config.portal.frameAncestors}`);
    res.setHeader("Cache-Control", "no-store");
    res.setHeader("Referrer-Policy", "no-referrer");
    const verdict = verifyPortalLink(secret, req.query);
    if ("customerId" in verdict) return verdict.customerId;
    const message = REFUSALS[verdict.refused];
    if (as === "html") res.status(403).type("html").send(refusedPage(message, "/portal/assets"));
    else
      res
        .status(403)
        .json(new HttpError(403, message, "permission_error", `portal_link_${verdict.refused}`).toBody());
    return undefined;
  };

  router.get("/portal", async (req, res) => {
    const customerId = opened(req, res, "html");
    if (!customerId) return;
    const data = await portalData(deps, customerId);
    if (!data) throw notFound(`No customer ${customerId}.`);
    res.type("html").send(portalPage(data, "/portal/assets"));
  });

  router.get("/portal/data", async (req, res) => {
    const customerId = opened(req, res, "json");
    if (!customerId) return;
    const data = await portalData(deps, customerId);
    if (!data) throw notFound(`No customer ${customerId}.`);
    res.json(data);
  });
  return router;
}

const customerParams = z.object({ id: z.string().min(1).max(200) });

/** POST /admin/customers/{id}/portal-sessions: a signed portal link, one hour, one customer. */
export function adminPortalRoutes(deps: Deps): Router {
  const router = Router();
  const secret = portalSecret(deps.config);
  router.post("/customers/:id/portal-sessions", async (req, res) => {
    const { id } = parseInput(customerParams, req.params);
    if (!secret)
      throw new HttpError(
        503,
        "The portal needs PORTAL_SECRET or ADMIN_TOKEN.",
        "service_unavailable",
        "portal_disabled",
      );
    if (!(await findCustomer(deps.db, id))) throw notFound(`No customer ${id}.`);
    res.status(201).json(portalSession(publicBase(deps, req), signPortalLink(secret, id)));
  });
  return router;
}
