import { Router } from "express";
import type { Deps } from "../../deps.js";

const within = <T>(ms: number, promise: Promise<T>) =>
  Promise.race([
    promise,
    new Promise<never>((_, reject) =>
      setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms).unref(),
    ),
  ]);

/** /healthz: the process is up. /readyz: Postgres and Redis both answer within a second. */
export function healthRoutes(deps: Pick<Deps, "db" | "redis">): Router {
  const router = Router();
  router.get("/healthz", (_req, res) => {
    res.json({ status: "ok" });
  });
  router.get("/readyz", async (_req, res) => {
    const [postgres, redis] = await Promise.allSettled([
      within(1_000, deps.db.raw("select 1")),
      within(1_000, deps.redis.ping()),
    ]);
    const checks = {
      postgres: postgres.status === "fulfilled" ? "ok" : String(postgres.reason?.message ?? postgres.reason),
      redis: redis.status === "fulfilled" ? "ok" : String(redis.reason?.message ?? redis.reason),
    };
    const ready = checks.postgres === "ok" && checks.redis === "ok";
    res.status(ready ? 200 : 503).json({ status: ready ? "ok" : "unavailable", checks });
  });
  return router;
}
