import type { Db } from "../../platform/db.js";
import { scanKeys, type RedisClient } from "../../platform/redis.js";
import { creditBalance } from "./balance.js";

/**
 * The real-time view of a customer's credits: one Redis hash per customer, field `avail` = the
 * Postgres balance minus what requests in flight have reserved, and one field `r:<request id>` per
 * reservation. Postgres stays the truth (src/billing/credits/consume.ts never draws below zero); the
 * counter is what lets a request be refused *before* it runs, so concurrent requests cannot together
 * spend more than the balance. Reserving, settling and adjusting are single Lua scripts: atomic
 * across web and worker processes. Settling is keyed by request id, so a retried job settles once.
 *
 * When Redis loses the hash, the next read rebuilds `avail` from Postgres (the first rebuilder wins).
 * Reservations held at that moment are forgotten: their requests still settle in Postgres, which
 * covers at most the balance, and the uncovered part of such a request goes on the invoice
 * (README "Credits"), so nothing is served unpaid.
 */

// Reserves min(ARGV[2], avail) when that is at least ARGV[3].
// → {1, avail, reserved} (or what this request already reserved), {0, avail, 0} refused, {-1, 0, 0} missing.
const RESERVE = `
local avail = redis.call('HGET', KEYS[1], 'avail')
if not avail then return {-1, 0, 0} end
avail = tonumber(avail)
local held = redis.call('HGET', KEYS[1], ARGV[1])
if held then return {1, avail, tonumber(held)} end
local amount = math.min(tonumber(ARGV[2]), avail)
if amount < tonumber(ARGV[3]) then return {0, avail, 0} end
redis.call('HINCRBY', KEYS[1], 'avail', -amount)
redis.call('HSET', KEYS[1], ARGV[1], amount, ARGV[4], ARGV[5])
return {1, avail - amount, amount}`;

const REBUILD = `
redis.call('HSETNX', KEYS[1], 'avail', ARGV[1])
return tonumber(redis.call('HGET', KEYS[1], 'avail'))`;

// Replaces a reservation by what was consumed; a missing reservation (settled already) changes nothing.
const SETTLE = `
local reserved = redis.call('HGET', KEYS[1], ARGV[1])
if not reserved then return 0 end
redis.call('HDEL', KEYS[1], ARGV[1], ARGV[3])
redis.call('HINCRBY', KEYS[1], 'avail', tonumber(reserved) - tonumber(ARGV[2]))
return 1`;

// A change Postgres already holds (a grant, a consumption without reservation, an expiry): applied
// only when the counter exists; a missing counter is rebuilt from Postgres, which includes it.
const ADJUST = `
if redis.call('HEXISTS', KEYS[1], 'avail') == 0 then return 0 end
redis.call('HINCRBY', KEYS[1], 'avail', ARGV[1])
return 1`;

export type CreditReserveResult =
  { ok: true; reservedMicros: number; availableMicros: number } | { ok: false; availableMicros: number };

type Deps = { db: Db; redis: RedisClient; prefix: string };

export function createCreditCounter({ db, redis, prefix }: Deps) {
  // One hash tag per customer: a Redis Cluster spreads customers over slots.
  const key = (customerId: string) => `{${prefix}-credits-${customerId}}`;
  // `r:<id>` holds a reservation's micros, `t:<id>` when it was made (for the sweep of lost ones).
  const field = (requestId: string) => `r:${requestId}`;
  const since = (requestId: string) => `t:${requestId}`;
  const run = async (script: string, k: string, ...args: Array<string | number>) =>
    redis.eval(script, 1, k, ...args) as Promise<unknown>;

  async function rebuild(customerId: string): Promise<number> {
    return Number(await run(REBUILD, key(customerId), await creditBalance(db, customerId)));
  }

  return {
    /** Micros spendable now: the balance minus what requests in flight hold. */
    async available(customerId: string): Promise<number> {
      const avail = await redis.hget(key(customerId), "avail");
      return avail === null ? rebuild(customerId) : Number(avail);
    },

    /**
     * Holds up to `maxMicros` of the customer's credits for one request — what is there, when that is
     * at least `minMicros` — or refuses. A request that holds credits already keeps what it holds.
     */
    async reserve(
      customerId: string,
      requestId: string,
      { maxMicros, minMicros }: { maxMicros: number; minMicros: number },
    ): Promise<CreditReserveResult> {
      for (let attempt = 0; ; attempt++) {
        const [status, avail, reserved] = (await run(
          RESERVE,
          key(customerId),
          field(requestId),
          maxMicros,
          minMicros,
          since(requestId),
          Date.now(),
        )) as [number, number, number];
        if (status === 1) return { ok: true, reservedMicros: reserved, availableMicros: avail };
        if (status === 0) return { ok: false, availableMicros: avail };
        if (attempt > 0) throw new Error(`credit counter of ${customerId} vanished while rebuilding`);
        await rebuild(customerId);
      }
    },

    /** Replaces a request's reservation by what it consumed; idempotent per request id. */
    async settle(customerId: string, requestId: string, consumedMicros: number): Promise<boolean> {
      return (await run(SETTLE, key(customerId), field(requestId), consumedMicros, since(requestId))) === 1;
    },

    /** Gives a request's whole reservation back; idempotent per request id. */
    async release(customerId: string, requestId: string): Promise<boolean> {
      return (await run(SETTLE, key(customerId), field(requestId), 0, since(requestId))) === 1;
    },

    /**
     * Every customer's reservations made before `olderThan`, for the sweep of reservations no job
     * will settle (src/billing/credits/hold-sweeper.ts). Scans the counters, so it is for a
     * scheduled job, not a request path.
     */
    async staleHolds(
      olderThan: Date,
    ): Promise<Array<{ customerId: string; requestId: string; micros: number }>> {
      const stale: Array<{ customerId: string; requestId: string; micros: number }> = [];
      const prefixOfKey = `{${prefix}-credits-`;
      // Every master's keys on a cluster: each customer's counter has its own hash tag.
      await scanKeys(redis, `${prefixOfKey}*`, async (keys) => {
        for (const k of keys) {
          const customerId = k.slice(prefixOfKey.length, -1);
          const fields = await redis.hgetall(k);
          for (const [name, value] of Object.entries(fields)) {
            if (!name.startsWith("t:") || Number(value) >= olderThan.getTime()) continue;
            const requestId = name.slice(2);
            const micros = Number(fields[field(requestId)] ?? 0);
            stale.push({ customerId, requestId, micros });
          }
        }
      });
      return stale;
    },

    /**
     * Applies a change Postgres already committed: + for a grant, − for consumption without a
     * reservation, an expiry or a void. Call it after the commit.
     */
    async adjust(customerId: string, deltaMicros: number): Promise<void> {
      if (deltaMicros !== 0) await run(ADJUST, key(customerId), deltaMicros);
    },
  };
}

export type CreditCounter = ReturnType<typeof createCreditCounter>;
