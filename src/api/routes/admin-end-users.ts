import { Router } from "express";
import { z } from "zod";
import type { Deps } from "../../deps.js";
import { NotFoundError, notFound } from "../../errors.js";
import { jsonBody, parseInput } from "../input.js";
import {
  deleteEndUserLimit,
  END_USER_MAX_CHARS,
  listEndUserLimits,
  setEndUserLimit,
  type EndUserLimit,
} from "../../billing/end-users/limits.js";

const END_USER = {
  error: `end_user must be a string of 1 to ${END_USER_MAX_CHARS} characters, or null for the default.`,
};
const endUser = z.string(END_USER).min(1, END_USER).max(END_USER_MAX_CHARS, END_USER).nullish();
const TOKENS = { error: "limit_tokens must be a positive integer, or null." };
const MICROS = { error: "limit_micros must be a positive integer (micro-dollars: 1000000 = $1), or null." };
// Bounded so a spend limit, converted to tokens at the plan's rate (× 1000), stays an exact number.
const MAX_LIMIT = 1_000_000_000_000;

const limitBody = jsonBody(
  z
    .object({
      end_user: endUser,
      limit_tokens: z.number(TOKENS).int(TOKENS).min(1, TOKENS).max(MAX_LIMIT, TOKENS).nullish(),
      limit_micros: z.number(MICROS).int(MICROS).min(1, MICROS).max(MAX_LIMIT, MICROS).nullish(),
    })
    .refine((b) => b.limit_tokens != null || b.limit_micros != null, {
      message: "Set limit_tokens, limit_micros or both; DELETE removes a limit.",
      params: { code: "missing_required_parameter" },
    }),
);
const endUserQuery = z.object({ end_user: endUser });

/** An end-user limit as the admin API answers it. */
export const formatEndUserLimit = (l: EndUserLimit) => ({
  object: "end_user_limit",
  customer_id: l.customerId,
  end_user: l.endUser,
  limit_tokens: l.limitTokens,
  limit_micros: l.limitMicros,
  updated_at: l.updatedAt.toISOString(),
});

/**
 * A customer's limits on its end users (README "End users"), mounted under the authenticated
 * /admin: `end_user` null (or absent) is the default for every end user without its own.
 */
export function adminEndUserRoutes(deps: Pick<Deps, "db">): Router {
  const router = Router();

  router.put("/customers/:id/end-user-limits", async (req, res) => {
    const customerId = String(req.params.id);
    const body = parseInput(limitBody, req.body);
    const input = {
      customerId,
      endUser: body.end_user ?? null,
      limitTokens: body.limit_tokens ?? null,
      limitMicros: body.limit_micros ?? null,
    };
    const limit = await setEndUserLimit(deps.db, input).catch((err: unknown) => {
      throw err instanceof NotFoundError ? notFound(`No customer ${customerId}.`) : err;
    });
    res.json(formatEndUserLimit(limit));
  });

  router.get("/customers/:id/end-user-limits", async (req, res) => {
    const customerId = String(req.params.id);
    if (!(await deps.db("customers").where({ id: customerId }).first("id")))
      throw notFound(`No customer ${customerId}.`);
    const limits = await listEndUserLimits(deps.db, customerId);
    res.json({ object: "list", data: limits.map(formatEndUserLimit) });
  });

  router.delete("/customers/:id/end-user-limits", async (req, res) => {
    const customerId = String(req.params.id);
    const { end_user: named } = parseInput(endUserQuery, req.query);
    const which = named ? `end user '${named}'` : "the default";
    if (!(await deleteEndUserLimit(deps.db, customerId, named ?? null)))
      throw notFound(`Customer ${customerId} has no limit for ${which}.`);
    res.json({ object: "end_user_limit", customer_id: customerId, end_user: named ?? null, deleted: true });
  });

  return router;
}
