import { Redis, type RedisOptions } from "ioredis";

export type { Redis };

/** How rediss:// connections treat the server's certificate; verified unless configured otherwise. */
export type RedisTls = { rejectUnauthorized: boolean };

const VERIFIED: RedisTls = { rejectUnauthorized: true };

/** The options every connection shares; exported so the TLS choice can be checked without connecting. */
export function baseRedisOptions(url: string, tls: RedisTls = VERIFIED): RedisOptions {
  const parsed = new URL(url);
  return {
    ...(parsed.protocol === "rediss:" ? { tls: { rejectUnauthorized: tls.rejectUnauthorized } } : {}),
    // Keep reconnecting, never faster than every second, so a restarted Redis is picked up again.
    retryStrategy: (times: number) => Math.min(times * 100, 1_000),
  };
}

/** Producer connection (API): fails fast when Redis is down so the API can answer 503 at once. */
export function createProducerRedis(url: string, tls?: RedisTls): Redis {
  return new Redis(url, {
    ...baseRedisOptions(url, tls),
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    commandTimeout: 2_000,
  });
}

/** Worker / blocking connection: waits through outages (BullMQ requires maxRetriesPerRequest null). */
export function createWorkerRedis(url: string, tls?: RedisTls): Redis {
  return new Redis(url, { ...baseRedisOptions(url, tls), maxRetriesPerRequest: null });
}

/**
 * Blocking reader (XREAD BLOCK on a relayed stream): never the shared producer connection, whose
 * command timeout would cut a block short and whose pipeline a block would stall for everyone.
 */
export function createReaderRedis(url: string, tls?: RedisTls): Redis {
  return new Redis(url, { ...baseRedisOptions(url, tls), maxRetriesPerRequest: 1 });
}

/**
 * What an operator must hear at boot when certificate checks are off: anyone on the path to Redis
 * can then read and rewrite jobs (chat bodies, answers, usage). Undefined when they are on.
 */
export function redisTlsWarning(config: { redisTlsRejectUnauthorized: boolean }): string | undefined {
  if (config.redisTlsRejectUnauthorized) return undefined;
  return (
    "REDIS_TLS_REJECT_UNAUTHORIZED=false: the Redis server's TLS certificate is not verified, so a " +
    "man in the middle can read and change queued jobs. Keep it only for a Redis whose certificate " +
    "cannot be verified (Heroku Redis' self-signed one)."
  );
}

/** The TLS setting of a configuration, for the connection factories. */
export function redisTlsOf(config: { redisTlsRejectUnauthorized: boolean }): RedisTls {
  return { rejectUnauthorized: config.redisTlsRejectUnauthorized };
}

/**
 * Gives a Redis connection, or a BullMQ queue or QueueEvents, the `error` listener it must have:
 * without one an emitted connection error kills the process, and BullMQ logs every reconnect. Nothing
 * is lost: ioredis reconnects by itself, and the command that hit the error rejects where it is
 * reported (503s, /readyz, a job's retry).
 */
export function reconnectQuietly<T extends { on(event: "error", listener: (err: Error) => void): unknown }>(
  emitter: T,
): T {
  emitter.on("error", () => {});
  return emitter;
}
