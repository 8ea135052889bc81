import { Router } from "express";
import { z } from "zod";
import type { WebDeps } from "../../deps.js";
import { chartAssets } from "../html.js";
import { parseInput } from "../input.js";
import { dashboardData } from "./data.js";
import { dashboardPage } from "./page.js";

type Deps = Pick<WebDeps, "db" | "queues">;

const dataQuery = z.object({
  customer: z.string().min(1).max(200).optional(),
  // The profitability target multiple, as the CLI's --target.
  target: z.coerce.number().positive().max(1000).default(3),
});

/** The operator dashboard under /admin (the caller puts admin auth in front): page, data, assets. */
export function dashboardRoutes(deps: Deps): Router {
  const router = Router();
  router.use("/assets", chartAssets());
  router.get("/", (_req, res) => {
    res.type("html").send(dashboardPage());
  });
  router.get("/dashboard/data", async (req, res) => {
    const { customer, target } = parseInput(dataQuery, req.query);
    res.json(await dashboardData(deps, { customerId: customer, targetHundredths: Math.round(target * 100) }));
  });
  return router;
}
