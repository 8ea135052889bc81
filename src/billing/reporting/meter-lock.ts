import { randomUUID } from "node:crypto";
import type { RedisClient } from "../../platform/redis.js";

const RELEASE = `if redis.call("get", KEYS[1]) == ARGV[1] then return redis.call("del", KEYS[1]) else return 0 end`;

/**
 * Stripe allows one meter-event call at a time per customer and meter. This lock is that rule
 * across every report worker and process: the caller holds it for the whole call (including the
 * SDK's own reconnect), and its TTL only frees it if the holder died.
 */
export function createMeterLock(redis: RedisClient, prefix: string) {
  const key = (stripeCustomerId: string, eventName: string) =>
    `${prefix}:meter-lock:${eventName}:${stripeCustomerId}`;
  return {
    /** A token when acquired, undefined when another call holds the lock. */
    async acquire(stripeCustomerId: string, eventName: string, ttlMs: number): Promise<string | undefined> {
      const token = randomUUID();
      const ok = await redis.set(key(stripeCustomerId, eventName), token, "PX", ttlMs, "NX");
      return ok === "OK" ? token : undefined;
    },
    async release(stripeCustomerId: string, eventName: string, token: string): Promise<void> {
      await redis.eval(RELEASE, 1, key(stripeCustomerId, eventName), token);
    },
  };
}
