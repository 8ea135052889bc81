import type { RequestHandler } from "express";
import type { Config } from "../../config.js";
import { HttpError } from "../../errors.js";
import type { Logger } from "../../platform/logger.js";
import type { Metrics } from "../../platform/metrics.js";
import type { RedisClient } from "../../platform/redis.js";

type Deps = {
  config: Pick<Config, "queuePrefix" | "rateLimit">;
  redis: Pick<RedisClient, "eval">;
  logger: Logger;
  metrics: Pick<Metrics, "rateLimited">;
};

const WINDOW_MS = 60_000;

// One atomic step shared by every web process: count the request, start the window on the first
// one, and return the count with the window's remaining time (Redis's clock, not ours).
const HIT = `
local n = redis.call("INCR", KEYS[1])
if n == 1 then redis.call("PEXPIRE", KEYS[1], ARGV[1]) end
local ttl = redis.call("PTTL", KEYS[1])
if ttl < 0 then redis.call("PEXPIRE", KEYS[1], ARGV[1]); ttl = tonumber(ARGV[1]) end
return {n, ttl}`;

/** The requests-per-minute limit of a plan; 0 means unlimited. */
export function limitFor(config: Pick<Config, "rateLimit">, planId: string): number {
  return config.rateLimit.perPlan[planId] ?? config.rateLimit.perMinute;
}

/**
 * Per-API-key rate limit across all web processes: a one-minute window in Redis that opens with a
 * key's first request. Over the limit → 429 `rate_limit_error` with Retry-After. Expects
 * customerAuth before it. When Redis is down it lets requests through: the chat path answers 503
 * on its own, and a limiter must not become a second way to fail.
 */
export function rateLimit(deps: Deps): RequestHandler {
  return async (req, res, next) => {
    const customer = req.customer!;
    const limit = limitFor(deps.config, customer.plan.id);
    if (limit === 0) return next();
    let count: number;
    let ttlMs: number;
    try {
      const key = `${deps.config.queuePrefix}:ratelimit:${customer.keyId}`;
      [count, ttlMs] = (await deps.redis.eval(HIT, 1, key, WINDOW_MS)) as [number, number];
    } catch (err) {
      deps.logger.warn({ err: (err as Error).message }, "rate limit unchecked: Redis unavailable");
      return next();
    }
    const resetS = Math.max(1, Math.ceil(ttlMs / 1000));
    res.setHeader("x-ratelimit-limit-requests", String(limit));
    res.setHeader("x-ratelimit-remaining-requests", String(Math.max(0, limit - count)));
    res.setHeader("x-ratelimit-reset-requests", `${resetS}s`);
    if (count <= limit) return next();
    deps.metrics.rateLimited.inc();
    res.setHeader("Retry-After", String(resetS));
    throw new HttpError(
      429,
      `Rate limit reached for requests per minute: limit ${limit}. Try again in ${resetS}s.`,
      "rate_limit_error",
      "rate_limit_exceeded",
    );
  };
}
