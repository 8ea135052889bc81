import { Cluster, Redis, type ClusterOptions, type RedisOptions } from "ioredis";
import { isClusterUrl, parseClusterUrl } from "./redis-target.js";

export type { Cluster, Redis };

/**
 * A connection to one Redis or to a Redis Cluster: ioredis' `Cluster` has the same command API and
 * routes each command to the master of its keys' slot. Every multi-key command and script meterline
 * sends names keys of one hash tag (README "Redis Cluster").
 */
export type RedisClient = Redis | Cluster;

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

/**
 * The `Cluster` options for a `redis+cluster://` URL: its seeds, and per-node `redisOptions` (TLS,
 * credentials, the role's retry settings). `enableOfflineQueue` is the cluster's own: false makes a
 * command fail at once while no slot map is known, as the producer wants.
 */
export function clusterOptions(
  url: string,
  node: RedisOptions,
  tls: RedisTls = VERIFIED,
  enableOfflineQueue = true,
): { nodes: Array<{ host: string; port: number }>; options: ClusterOptions } {
  const target = parseClusterUrl(url);
  if (!target) throw new Error(`not a redis+cluster://host:port,host:port URL: ${url}`);
  return {
    nodes: target.nodes,
    options: {
      enableOfflineQueue,
      // Look the slot map up again soon after a failover instead of giving up on the command.
      retryDelayOnFailover: 100,
      retryDelayOnClusterDown: 100,
      retryDelayOnTryAgain: 100,
      clusterRetryStrategy: (times: number) => Math.min(times * 100, 1_000),
      redisOptions: {
        ...node,
        ...(target.tls ? { tls: { rejectUnauthorized: tls.rejectUnauthorized } } : {}),
        ...(target.username ? { username: target.username } : {}),
        ...(target.password ? { password: target.password } : {}),
      },
    },
  };
}

/** One connection with a role's options: a `Cluster` for a `redis+cluster://` URL, else a `Redis`. */
function connect(url: string, tls: RedisTls | undefined, role: RedisOptions): RedisClient {
  if (!isClusterUrl(url)) return new Redis(url, { ...baseRedisOptions(url, tls), ...role });
  const { enableOfflineQueue, ...node } = role;
  const { nodes, options } = clusterOptions(url, node, tls, enableOfflineQueue ?? true);
  return new Cluster(nodes, options);
}

/** Producer connection (API): fails fast when Redis is down so the API can answer 503 at once. */
export function createProducerRedis(url: string, tls?: RedisTls): RedisClient {
  return connect(url, tls, { enableOfflineQueue: false, maxRetriesPerRequest: 1, commandTimeout: 2_000 });
}

/** Worker / blocking connection: waits through outages (BullMQ requires maxRetriesPerRequest null). */
export function createWorkerRedis(url: string, tls?: RedisTls): RedisClient {
  return connect(url, tls, { maxRetriesPerRequest: null });
}

/**
 * Blocking reader (XREAD BLOCK on a relayed stream): never the shared producer connection, whose
 * command timeout would cut a block short and whose pipeline a block would stall for everyone.
 */
export function createReaderRedis(url: string, tls?: RedisTls): RedisClient {
  return connect(url, tls, { maxRetriesPerRequest: 1 });
}

/**
 * The server connection that holds `key`: the client itself on one Redis, the master of the key's
 * slot on a cluster. For per-server commands about a key's traffic (CLIENT ID / UNBLOCK of the
 * connection that blocks on it), which a cluster would otherwise send to any node.
 */
export async function serverOf(redis: RedisClient, key: string): Promise<Redis> {
  if (!(redis instanceof Cluster)) return redis;
  const slot = Number(await redis.cluster("KEYSLOT", key));
  const [master] = redis.slots[slot] ?? [];
  const node = redis.nodes("master").find((n) => `${n.options.host}:${n.options.port}` === master);
  if (!node) throw new Error(`no master of slot ${slot} is connected`);
  return node;
}

/**
 * Every key matching `pattern`, batch by batch. SCAN walks one server's keyspace, so on a cluster
 * every master is scanned (replicas hold copies of the same keys). For sweeps and cleanup, never a
 * request path.
 */
export async function scanKeys(
  redis: RedisClient,
  pattern: string,
  onBatch: (keys: string[]) => Promise<void>,
): Promise<void> {
  const servers = redis instanceof Cluster ? redis.nodes("master") : [redis];
  for (const server of servers) {
    let cursor = "0";
    do {
      const [next, keys] = await server.scan(cursor, "MATCH", pattern, "COUNT", 500);
      cursor = next;
      if (keys.length > 0) await onBatch(keys);
    } while (cursor !== "0");
  }
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
