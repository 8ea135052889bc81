import type { Db } from "../../platform/db.js";
import type { RedisClient } from "../../platform/redis.js";
import type { Period } from "./periods.js";
import { exactSum } from "./usage-bounds.js";

/**
 * Hard limits per customer and period, held in one Redis hash per (customer, period):
 * field `used` = tokens recorded + tokens reserved by requests in flight, and one field
 * `r:<request id>` per reservation. Reserving, settling and releasing are single Lua scripts, so
 * they are atomic across concurrent requests and across web and worker processes. Keying the
 * settlement by request id makes it idempotent: a retried or stalled job settles once.
 */

// → {1, used} reserved (or already reserved by this request), {0, used} refused, {-1, 0} counter missing.
const RESERVE = `
if redis.call('HEXISTS', KEYS[1], 'used') == 0 then return {-1, 0} end
local used = tonumber(redis.call('HGET', KEYS[1], 'used'))
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then return {1, used} end
local tokens = tonumber(ARGV[2])
if used + tokens > tonumber(ARGV[3]) then return {0, used} end
redis.call('HINCRBY', KEYS[1], 'used', tokens)
redis.call('HSET', KEYS[1], ARGV[1], tokens)
return {1, used + tokens}`;

// Concurrent rebuilders agree: the first value written wins (HSETNX).
const REBUILD = `
redis.call('HSETNX', KEYS[1], 'used', ARGV[1])
redis.call('EXPIREAT', KEYS[1], ARGV[2])
return 1`;

// Replaces a reservation by the real usage; a missing reservation (settled already) changes nothing.
const SETTLE = `
local reserved = redis.call('HGET', KEYS[1], ARGV[1])
if not reserved then return 0 end
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('HINCRBY', KEYS[1], 'used', tonumber(ARGV[2]) - tonumber(reserved))
return 1`;

// Usage recorded without a reservation (ingested events): counted only if the counter exists;
// a missing counter is rebuilt from Postgres, which already holds the rows.
const ADD = `
if redis.call('HEXISTS', KEYS[1], 'used') == 0 then return 0 end
redis.call('HINCRBY', KEYS[1], 'used', ARGV[1])
return 1`;

/** What a chat job carries to settle its reservation: the period it was reserved in. */
export interface QuotaHold {
  periodStart: string; // ISO
  tokens: number;
  /** The completion's share of `tokens`: the worker caps the provider's completion at it. */
  completionTokens?: number;
}

export type ReserveResult = { ok: true } | { ok: false; usedTokens: number };

type Deps = { db: Db; redis: RedisClient; prefix: string };

/** Quota counters on Redis, rebuilt from the Postgres ledger when Redis lost them. */
export function createQuota({ db, redis, prefix }: Deps) {
  // One hash tag per customer: a Redis Cluster spreads customers over slots.
  const key = (customerId: string, periodStart: Date) =>
    `{${prefix}-quota-${customerId}}:${Math.floor(periodStart.getTime() / 1000)}`;
  const field = (requestId: string) => `r:${requestId}`;

  const run = async (script: string, k: string, ...args: Array<string | number>) =>
    redis.eval(script, 1, k, ...args) as Promise<unknown>;

  async function rebuild(customerId: string, period: Period): Promise<void> {
    const recorded = await recordedTokens(db, customerId, period);
    // Kept a day past the period's end, for requests that settle just after it.
    const expireAt = Math.floor(period.end.getTime() / 1000) + 86_400;
    await run(REBUILD, key(customerId, period.start), recorded, expireAt);
  }

  return {
    /** Reserves an estimate against the limit before a request is enqueued. */
    async reserve(input: {
      customerId: string;
      requestId: string;
      period: Period;
      limitTokens: number;
      tokens: number;
    }): Promise<ReserveResult> {
      const k = key(input.customerId, input.period.start);
      for (let attempt = 0; ; attempt++) {
        const [status, used] = (await run(
          RESERVE,
          k,
          field(input.requestId),
          input.tokens,
          input.limitTokens,
        )) as [number, number];
        if (status === 1) return { ok: true };
        if (status === 0) return { ok: false, usedTokens: used };
        if (attempt > 0) throw new Error(`quota counter ${k} vanished while rebuilding`);
        await rebuild(input.customerId, input.period);
      }
    },

    /** Replaces a request's reservation by its real usage; idempotent per request id. */
    async settle(customerId: string, requestId: string, hold: QuotaHold, actualTokens: number) {
      const k = key(customerId, new Date(hold.periodStart));
      return (await run(SETTLE, k, field(requestId), actualTokens)) === 1;
    },

    /** Gives a failed request's reservation back; idempotent per request id. */
    async release(customerId: string, requestId: string, hold: QuotaHold) {
      const k = key(customerId, new Date(hold.periodStart));
      return (await run(SETTLE, k, field(requestId), 0)) === 1;
    },

    /** Counts usage that was recorded without a reservation (ingested events). */
    async add(customerId: string, period: Period, tokens: number): Promise<void> {
      if (tokens > 0) await run(ADD, key(customerId, period.start), tokens);
    },
  };
}

export type Quota = ReturnType<typeof createQuota>;

/** Billable tokens the ledger holds for a customer in a period. */
export async function recordedTokens(db: Db, customerId: string, period: Period): Promise<number> {
  const row = await db("usage_events")
    .where({ customer_id: customerId })
    .where("created_at", ">=", period.start)
    .where("created_at", "<", period.end)
    .sum({ tokens: "billable_tokens" })
    .first();
  return exactSum(row?.tokens as string | undefined, `${customerId}'s billable tokens this period`);
}
