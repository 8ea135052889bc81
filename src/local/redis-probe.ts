import { Redis } from "ioredis";

const PROBE_TIMEOUT_MS = 3000;

/** A client that tries once and never reconnects, keeping the socket's own error for the message. */
export function redisProbeClient(url: string): { client: Redis; lastError: () => Error | undefined } {
  let last: Error | undefined;
  const client = new Redis(url, {
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    retryStrategy: () => null,
    connectTimeout: PROBE_TIMEOUT_MS,
    commandTimeout: PROBE_TIMEOUT_MS,
  });
  // Without a listener ioredis prints "Unhandled error event". The socket error (ECONNREFUSED, ...) is more
  // telling than the "Connection is closed." that connect() rejects with, so keep it.
  client.on("error", (err: Error) => (last = err));
  return { client, lastError: () => last };
}

/** Connect and PING. */
export async function probeRedis(url: string): Promise<void> {
  const { client, lastError } = redisProbeClient(url);
  try {
    await client.connect();
    const pong = await client.ping();
    if (pong !== "PONG") throw new Error(`unexpected PING reply ${JSON.stringify(pong)}`);
  } catch (err) {
    throw lastError() ?? err;
  } finally {
    client.disconnect();
  }
}
