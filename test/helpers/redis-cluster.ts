import { execFile } from "node:child_process";
import { rmSync } from "node:fs";
import path from "node:path";
import { promisify } from "node:util";
import { Redis } from "ioredis";
import { findFreePort, isPortFree } from "../../src/local/ports.js";
import { startRedisServer, type RedisServerHandle } from "../../src/local/redis-server.js";
import { tempDir } from "./redis-server.js";
import { waitFor } from "./wait.js";

const run = promisify(execFile);

/** A private Redis Cluster on loopback ports, never the shared Redis on 6379. */
export interface RedisClusterHandle {
  /** `redis+cluster://127.0.0.1:p1,…`: what REDIS_URL takes to use it. */
  url: string;
  /** The seeds, `127.0.0.1:p1,…`: what REDIS_CLUSTER_NODES takes. */
  nodes: string;
  ports: number[];
  /**
   * Promotes the replica of the master that serves `key` with `CLUSTER FAILOVER` (the graceful,
   * coordinated one) and resolves once that replica is a master serving the key's slot.
   */
  failover(key: string): Promise<{ from: number; to: number }>;
  stop(): Promise<void>;
}

const HOST = "127.0.0.1";

/**
 * A port whose cluster bus port (port + 10000) is free as well: every cluster node listens on both.
 */
async function clusterPort(taken: Set<number>): Promise<number> {
  for (;;) {
    const port = await findFreePort();
    if (port + 10_000 <= 65_535 && !taken.has(port) && (await isPortFree(port + 10_000))) return port;
  }
}

/** A plain connection to one node, for the admin commands a test sends to it. */
function admin(port: number): Redis {
  const redis = new Redis({ host: HOST, port, maxRetriesPerRequest: 1, lazyConnect: true });
  redis.on("error", () => {});
  return redis;
}

async function onNode<T>(port: number, command: (redis: Redis) => Promise<T>): Promise<T> {
  const redis = admin(port);
  try {
    return await command(redis);
  } finally {
    redis.disconnect();
  }
}

/** `cluster_state:ok` seen from every node: each one knows every slot's master. */
async function clusterReady(ports: number[]): Promise<boolean> {
  const states = await Promise.all(
    ports.map((port) => onNode(port, (r) => r.cluster("INFO") as Promise<string>)),
  );
  return states.every((info) => info.includes("cluster_state:ok"));
}

/**
 * Starts `masters` cluster-enabled redis-servers (plus one replica each when `replicas`) in temp
 * dirs without persistence, joins them with `redis-cli --cluster create`, and waits until every
 * node reports the cluster ok (and every replica is in sync, so a failover loses nothing).
 */
export async function startRedisCluster({ masters = 3, replicas = false } = {}): Promise<RedisClusterHandle> {
  const root = tempDir("meterline-cluster");
  const count = replicas ? masters * 2 : masters;
  const taken = new Set<number>();
  const servers: RedisServerHandle[] = [];
  try {
    for (let i = 0; i < count; i++) {
      const port = await clusterPort(taken);
      taken.add(port);
      servers.push(
        await startRedisServer({
          dir: path.join(root, String(port)),
          port,
          appendonly: false,
          extraArgs: [
            "--cluster-enabled",
            "yes",
            "--cluster-config-file",
            "nodes.conf",
            "--cluster-node-timeout",
            "5000",
          ],
        }),
      );
    }
    const ports = servers.map((s) => s.port);
    await run("redis-cli", [
      "--cluster",
      "create",
      ...ports.map((p) => `${HOST}:${p}`),
      "--cluster-replicas",
      replicas ? "1" : "0",
      "--cluster-yes",
    ]);
    await waitFor(() => clusterReady(ports), {
      timeoutMs: 30_000,
      intervalMs: 100,
      what: "the cluster to be ok",
    });
    if (replicas)
      await waitFor(() => replicasInSync(ports), {
        timeoutMs: 30_000,
        intervalMs: 100,
        what: "replicas in sync",
      });
    const nodes = ports.map((p) => `${HOST}:${p}`).join(",");
    return {
      url: `redis+cluster://${nodes}`,
      nodes,
      ports,
      failover: (key) => failover(ports, key),
      async stop() {
        await Promise.allSettled(servers.map((s) => s.stop()));
        rmSync(root, { recursive: true, force: true });
      },
    };
  } catch (err) {
    await Promise.allSettled(servers.map((s) => s.stop()));
    rmSync(root, { recursive: true, force: true });
    throw err;
  }
}

/**
 * Every replica linked to its master and caught up with what it has written, and every node's
 * CLUSTER SLOTS listing a replica for every slot range: replication can be up before gossip has
 * told the other nodes who replicates whom, and a failover needs the replica to be known.
 */
async function replicasInSync(ports: number[]): Promise<boolean> {
  const infos = await Promise.all(ports.map((port) => onNode(port, (r) => r.info("replication"))));
  const replicas = infos.filter((info) => info.includes("role:slave"));
  if (replicas.length === 0 || !replicas.every((info) => info.includes("master_link_status:up")))
    return false;
  const views = await Promise.all(ports.map((port) => onNode(port, (r) => r.cluster("SLOTS"))));
  return views.every((ranges) => ranges.length > 0 && ranges.every((range) => range.length >= 4));
}

/** The port of the master serving `key`'s slot, and of its first replica, from CLUSTER SLOTS. */
async function ownersOf(ports: number[], key: string): Promise<{ master: number; replica: number }> {
  return onNode(ports[0]!, async (r) => {
    const slot = (await r.cluster("KEYSLOT", key)) as number;
    const ranges = await r.cluster("SLOTS");
    const [, , owner, copy] = ranges.find(([from, to]) => slot >= from && slot <= to) ?? [];
    if (!owner || !copy) throw new Error(`no replica serves slot ${slot}`);
    return { master: owner[1], replica: copy[1] };
  });
}

async function failover(ports: number[], key: string): Promise<{ from: number; to: number }> {
  const { master, replica } = await waitFor(() => ownersOf(ports, key), {
    timeoutMs: 30_000,
    intervalMs: 50,
    what: `a replica of the master serving ${key}`,
  });
  await onNode(replica, (r) => r.cluster("FAILOVER"));
  await waitFor(async () => (await ownersOf(ports, key)).master === replica && (await clusterReady(ports)), {
    timeoutMs: 30_000,
    intervalMs: 50,
    what: `the replica on ${replica} to take over from ${master}`,
  });
  return { from: master, to: replica };
}
