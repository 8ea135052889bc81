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

export type MeterLock = ReturnType<typeof createMeterLock>;
export interface MeterKey {
  stripeCustomerId: string;
  eventName: string;
}
export type HeldLock = MeterKey & { token: string };

/**
 * Every lock of `keys` (distinct), or none: one request carries events for all of them. When one is
 * held elsewhere, those just taken are given back and the caller comes back later.
 */
export async function acquireAll(
  lock: MeterLock,
  keys: readonly MeterKey[],
  ttlMs: number,
): Promise<HeldLock[] | undefined> {
  const tokens = await Promise.all(keys.map((k) => lock.acquire(k.stripeCustomerId, k.eventName, ttlMs)));
  const held = keys.flatMap((k, i) => (tokens[i] ? [{ ...k, token: tokens[i] }] : []));
  if (held.length === keys.length) return held;
  await releaseAll(lock, held);
  return undefined;
}

export async function releaseAll(lock: MeterLock, held: readonly HeldLock[]): Promise<void> {
  await Promise.all(held.map((h) => lock.release(h.stripeCustomerId, h.eventName, h.token)));
}
