import { Router } from "express";
import type { Metrics } from "../../platform/metrics.js";
import { adminAuth } from "../middleware/auth.js";

/** GET /metrics (Prometheus text) behind ADMIN_TOKEN; not served without a token. */
export function metricsRoutes(deps: { metrics: Pick<Metrics, "registry">; adminToken: string }): Router {
  const router = Router();
  router.get("/metrics", adminAuth(deps.adminToken), async (_req, res) => {
    res.type(deps.metrics.registry.contentType).send(await deps.metrics.registry.metrics());
  });
  return router;
}
