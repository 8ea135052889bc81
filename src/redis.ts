import { Redis, type RedisOptions } from "ioredis";

export type { Redis };

const base = (url: string): RedisOptions => {
  const parsed = new URL(url);
  return {
    // Heroku Redis serves TLS with a self-signed certificate.
    ...(parsed.protocol === "rediss:" ? { tls: { rejectUnauthorized: false } } : {}),
    // Keep reconnecting, never faster than every second, so a restarted Redis is picked up again.
    retryStrategy: (times: number) => Math.min(times * 100, 1_000),
  };
};

/** Producer connection (API): fails fast when Redis is down so the API can answer 503 at once. */
export function createProducerRedis(url: string): Redis {
  return new Redis(url, {
    ...base(url),
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    commandTimeout: 2_000,
  });
}

/** Worker / blocking connection: waits through outages (BullMQ requires maxRetriesPerRequest null). */
export function createWorkerRedis(url: string): Redis {
  return new Redis(url, { ...base(url), maxRetriesPerRequest: null });
}

/**
 * Blocking reader (XREAD BLOCK on a relayed stream): never the shared producer connection, whose
 * command timeout would cut a block short and whose pipeline a block would stall for everyone.
 */
export function createReaderRedis(url: string): Redis {
  return new Redis(url, { ...base(url), maxRetriesPerRequest: 1 });
}
