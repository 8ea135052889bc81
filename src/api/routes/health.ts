import { Router } from "express";
import type { Deps } from "../../deps.js";
import { isAdminRequest } from "../middleware/auth.js";

const within = <T>(ms: number, promise: Promise<T>) =>
  Promise.race([
    promise,
    new Promise<never>((_, reject) =>
      setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms).unref(),
    ),
  ]);

const reasonOf = (result: PromiseSettledResult<unknown>) =>
  result.status === "rejected" ? String(result.reason?.message ?? result.reason) : undefined;

/**
 * /healthz: the process is up. /readyz: Postgres and Redis both answer within a second. It is
 * unauthenticated (load balancers poll it), so it names which dependency is down but not why:
 * driver errors carry hosts, ports and user names. The admin token adds each failure's text.
 */
export function healthRoutes(deps: Pick<Deps, "db" | "redis" | "config">): Router {
  const router = Router();
  const isAdmin = isAdminRequest(deps.config.adminToken);
  router.get("/healthz", (_req, res) => {
    res.json({ status: "ok" });
  });
  router.get("/readyz", async (req, res) => {
    const [postgres, redis] = await Promise.allSettled([
      within(1_000, deps.db.raw("select 1")),
      within(1_000, deps.redis.ping()),
    ]);
    const failures = { postgres: reasonOf(postgres), redis: reasonOf(redis) };
    const checks = {
      postgres: failures.postgres === undefined ? "ok" : "down",
      redis: failures.redis === undefined ? "ok" : "down",
    };
    const ready = checks.postgres === "ok" && checks.redis === "ok";
    const details = !ready && isAdmin(req) ? { details: failures } : {};
    res.status(ready ? 200 : 503).json({ status: ready ? "ok" : "unavailable", checks, ...details });
  });
  return router;
}
