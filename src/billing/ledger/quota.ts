import type { Knex } from "knex";
import type { Db } from "../../platform/db.js";
import type { RedisClient } from "../../platform/redis.js";
import type { Period } from "./periods.js";
import { exactSum } from "./usage-bounds.js";
import { usageSource } from "./usage-totals.js";
import { sha256 } from "../../platform/ids.js";

/**
 * Token limits per period, held in one Redis hash per (scope, period) — a customer's hard limit, or
 * one end user's limit inside a customer: field `used` = tokens recorded + tokens reserved by
 * requests in flight, and one field `r:<request id>` per reservation. Reserving, settling and
 * releasing are single Lua scripts, so they are atomic across concurrent requests and across web and
 * worker processes. Keying the settlement by request id makes it idempotent: a retried or stalled job
 * settles once.
 */

// Reserves up to ARGV[2] tokens, at least ARGV[4], under the limit ARGV[3].
// → {1, reserved} reserved (or already reserved by this request), {0, used} refused, {-1, 0} counter missing.
const RESERVE = `
if redis.call('HEXISTS', KEYS[1], 'used') == 0 then return {-1, 0} end
local used = tonumber(redis.call('HGET', KEYS[1], 'used'))
local held = redis.call('HGET', KEYS[1], ARGV[1])
if held then return {1, tonumber(held)} end
local room = tonumber(ARGV[3]) - used
if room < tonumber(ARGV[4]) then return {0, used} end
local tokens = math.min(tonumber(ARGV[2]), room)
redis.call('HINCRBY', KEYS[1], 'used', tokens)
redis.call('HSET', KEYS[1], ARGV[1], tokens)
return {1, tokens}`;

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

/** `tokens`: what was reserved (at least `minTokens`, at most the tokens asked for). */
export type ReserveResult = { ok: true; tokens: number } | { ok: false; usedTokens: number };

/** What a request reserves: `tokens` in full, or when `minTokens` is given, whatever room is left down to it. */
export interface ReserveInput {
  requestId: string;
  period: Period;
  limitTokens: number;
  tokens: number;
  minTokens?: number;
}

const epochS = (at: Date) => Math.floor(at.getTime() / 1000);

/**
 * A family of token counters on Redis, one per scope and period, rebuilt from the Postgres ledger
 * (`recorded`) when Redis lost them. `key` names a scope's counter; it must carry the customer's
 * hash tag, so a Redis Cluster keeps a customer's counters on one slot.
 */
export function createTokenCounter<Scope>({
  redis,
  key,
  recorded,
}: {
  redis: RedisClient;
  key(scope: Scope, periodStart: Date): string;
  recorded(scope: Scope, period: Period): Promise<number>;
}) {
  const field = (requestId: string) => `r:${requestId}`;

  const run = async (script: string, k: string, ...args: Array<string | number>) =>
    redis.eval(script, 1, k, ...args) as Promise<unknown>;

  async function rebuild(scope: Scope, period: Period): Promise<void> {
    const tokens = await recorded(scope, period);
    // Kept a day past the period's end, for requests that settle just after it.
    await run(REBUILD, key(scope, period.start), tokens, epochS(period.end) + 86_400);
  }

  return {
    /** Reserves an estimate against the limit before a request is enqueued. */
    async reserve(scope: Scope, input: ReserveInput): Promise<ReserveResult> {
      const k = key(scope, input.period.start);
      const min = input.minTokens ?? input.tokens;
      for (let attempt = 0; ; attempt++) {
        const args = [field(input.requestId), input.tokens, input.limitTokens, min];
        const [status, tokens] = (await run(RESERVE, k, ...args)) as [number, number];
        if (status === 1) return { ok: true, tokens };
        if (status === 0) return { ok: false, usedTokens: tokens };
        if (attempt > 0) throw new Error(`quota counter ${k} vanished while rebuilding`);
        await rebuild(scope, input.period);
      }
    },

    /** Replaces a request's reservation by its real usage; idempotent per request id. */
    async settle(scope: Scope, requestId: string, hold: QuotaHold, actualTokens: number) {
      const k = key(scope, new Date(hold.periodStart));
      return (await run(SETTLE, k, field(requestId), actualTokens)) === 1;
    },

    /** Gives a failed request's reservation back; idempotent per request id. */
    async release(scope: Scope, requestId: string, hold: QuotaHold) {
      const k = key(scope, new Date(hold.periodStart));
      return (await run(SETTLE, k, field(requestId), 0)) === 1;
    },

    /** Counts usage that was recorded without a reservation (ingested events). */
    async add(scope: Scope, period: Period, tokens: number): Promise<void> {
      if (tokens > 0) await run(ADD, key(scope, period.start), tokens);
    },
  };
}

type Deps = { db: Db; redis: RedisClient; prefix: string };

/** The key prefix of a customer's counters; the braces are its Redis Cluster hash tag. */
const customerTag = (prefix: string, customerId: string) => `{${prefix}-quota-${customerId}}`;

/** Customers' hard-limit counters, scoped by customer id. */
export function createQuota({ db, redis, prefix }: Deps) {
  return createTokenCounter<string>({
    redis,
    key: (customerId, start) => `${customerTag(prefix, customerId)}:${epochS(start)}`,
    recorded: (customerId, period) => recordedTokens(db, customerId, period),
  });
}

/** One end user of one customer: the scope of an end-user limit. */
export interface EndUserScope {
  customerId: string;
  endUser: string;
}

/**
 * End users' limit counters, one per (customer, end user, period), on the customer's hash tag. The
 * end user is hashed into the key: it is the customer's text, up to 512 characters.
 */
export function createEndUserQuota({ db, redis, prefix }: Deps) {
  return createTokenCounter<EndUserScope>({
    redis,
    key: ({ customerId, endUser }, start) =>
      `${customerTag(prefix, customerId)}:eu:${sha256(endUser).slice(0, 32)}:${epochS(start)}`,
    recorded: ({ customerId, endUser }, period) => recordedTokens(db, customerId, period, endUser),
  });
}

export type EndUserQuota = ReturnType<typeof createEndUserQuota>;
export type Quota = ReturnType<typeof createQuota>;

/**
 * Billable tokens the ledger holds for a customer in a period — from the hourly rollup
 * (usage-totals.ts) — or for one of its end users, from the ledger's (customer, end user, time)
 * index, as the rollup has no end user.
 */
export async function recordedTokens(
  db: Db,
  customerId: string,
  period: Period,
  endUser?: string,
): Promise<number> {
  const source: Knex.QueryBuilder =
    endUser === undefined
      ? db.from(usageSource(db, period, { customerId }))
      : db("usage_events")
          .where({ customer_id: customerId, end_user: endUser })
          .where("created_at", ">=", period.start)
          .where("created_at", "<", period.end);
  const row = await source.sum({ tokens: "billable_tokens" }).first();
  return exactSum(row?.tokens as string | undefined, `${customerId}'s billable tokens this period`);
}
