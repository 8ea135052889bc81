import { randomUUID } from "node:crypto";
import type { Config } from "../../config.js";
import { HttpError, unavailable } from "../../errors.js";
import type { Logger } from "../../platform/logger.js";
import { QUEUE, queuePrefix } from "../../queues/queues.js";
import type { RedisClient } from "../../platform/redis.js";

type Deps = {
  config: Pick<Config, "queuePrefix" | "streams">;
  redis: Pick<RedisClient, "eval" | "zrem" | "pipeline">;
  logger: Logger;
};

export interface StreamSlots {
  /** Takes a slot for one open stream, or throws 429 when the process or the customer has none left. */
  acquire(customerId: string): Promise<{ release(): void }>;
  close(): void;
}

// A slot is a member of its customer's sorted set, scored with the time its lease ends. A web process
// that dies leaves its members behind; they stop counting once their lease ends, so a crash costs a
// customer slots for at most LEASE_MS. Held slots are renewed well before then.
const LEASE_MS = 60_000;
const RENEW_MS = LEASE_MS / 3;

// Redis's clock, so web processes with skewed clocks agree on which leases ended.
const ACQUIRE = `
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then return 0 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1`;
const RENEW = `
local t = redis.call('TIME')
local now = t[1] * 1000 + math.floor(t[2] / 1000)
redis.call('ZADD', KEYS[1], 'XX', now + tonumber(ARGV[1]), ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 1`;

const tooMany = (message: string) => new HttpError(429, message, "rate_limit_error", "too_many_streams");

/**
 * Caps open streaming responses: STREAMS_MAX_PER_PROCESS in this web process (memory, sockets) and
 * STREAMS_MAX_PER_CUSTOMER across every web process (an atomic counter in Redis), so one customer
 * cannot hold every stream slot.
 */
export function createStreamSlots(deps: Deps): StreamSlots {
  const { maxPerProcess, maxPerCustomer } = deps.config.streams;
  // The chat queue's hash tag: the key sits in the queue's Redis Cluster slot.
  const keyOf = (customerId: string) =>
    `${queuePrefix(deps.config.queuePrefix, QUEUE.chat)}:streams:${customerId}`;
  const held = new Map<string, string>(); // member → key
  let open = 0;

  const renew = setInterval(() => {
    if (held.size === 0) return;
    const pipeline = deps.redis.pipeline();
    for (const [member, key] of held) pipeline.eval(RENEW, 1, key, LEASE_MS, member);
    pipeline.exec().catch((err: unknown) => deps.logger.warn({ err }, "could not renew stream slots"));
  }, RENEW_MS);
  renew.unref();

  return {
    async acquire(customerId) {
      if (open >= maxPerProcess) {
        deps.logger.warn({ open, maxPerProcess }, "stream refused: STREAMS_MAX_PER_PROCESS reached");
        throw tooMany(
          `This server has ${maxPerProcess} streams open, its limit; retry shortly or send the request without stream.`,
        );
      }
      open++;
      const key = keyOf(customerId);
      const member = randomUUID();
      let granted: unknown;
      try {
        granted = await deps.redis.eval(ACQUIRE, 1, key, maxPerCustomer, LEASE_MS, member);
      } catch (err) {
        open--;
        throw unavailable("The request queue is unavailable; retry shortly.", err);
      }
      if (granted !== 1) {
        open--;
        throw tooMany(
          `You have ${maxPerCustomer} streaming requests open, the limit per customer; wait for one to ` +
            "finish, or send the request without stream.",
        );
      }
      held.set(member, key);
      let released = false;
      return {
        release() {
          if (released) return;
          released = true;
          open--;
          held.delete(member);
          // Left behind on failure, the member stops counting when its lease ends.
          deps.redis
            .zrem(key, member)
            .catch((err: unknown) =>
              deps.logger.warn({ err, customerId }, "could not release a stream slot"),
            );
        },
      };
    },
    close() {
      clearInterval(renew);
    },
  };
}
