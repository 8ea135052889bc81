// Where Redis is: one server (redis:// or rediss://) or a Redis Cluster given by seed nodes
// (redis+cluster://host:port,host:port, or REDIS_CLUSTER_NODES). No imports: config.ts validates with it.

/** A Redis Cluster's seed nodes and what every node connection shares (TLS, credentials). */
export interface RedisClusterTarget {
  nodes: Array<{ host: string; port: number }>;
  tls: boolean;
  username: string | undefined;
  password: string | undefined;
}

const CLUSTER_URL = /^(rediss?)\+cluster:\/\/(?:([^@/]*)@)?([^@/]+?)\/?$/;
const NODE = /^([^\s,:/@]+|\[[0-9a-fA-F:]+\]):(\d{1,5})$/;

/** The seeds of `host:port,host:port`; undefined when one of them is not a host:port. */
export function parseClusterNodes(list: string): RedisClusterTarget["nodes"] | undefined {
  const nodes = list.split(",").map((node) => NODE.exec(node.trim()));
  if (nodes.length === 0 || nodes.some((m) => !m || Number(m[2]) > 65535)) return undefined;
  return nodes.map((m) => ({ host: m![1]!.replace(/^\[|\]$/g, ""), port: Number(m![2]) }));
}

/** A `redis+cluster://` (or `rediss+cluster://`) URL's target; undefined for any other URL. */
export function parseClusterUrl(url: string): RedisClusterTarget | undefined {
  const match = CLUSTER_URL.exec(url);
  if (!match) return undefined;
  const nodes = parseClusterNodes(match[3]!);
  if (!nodes) return undefined;
  const [user, pass] = (match[2] ?? "").split(":") as [string, string | undefined];
  return {
    nodes,
    tls: match[1] === "rediss",
    username: user ? decodeURIComponent(user) : undefined,
    password: pass ? decodeURIComponent(pass) : undefined,
  };
}

/** Whether a Redis URL names a cluster: the connection factories then build ioredis `Cluster`s. */
export const isClusterUrl = (url: string): boolean => /^rediss?\+cluster:/.test(url);

/**
 * The one Redis URL of a configuration: REDIS_CLUSTER_NODES' seeds as a `redis+cluster://` URL,
 * keeping the scheme (TLS) and credentials of REDIS_URL when both are set (a managed cluster's
 * `rediss://:password@…` URL plus its node list); otherwise REDIS_URL as given.
 */
export function redisUrlOf(
  redisUrl: string | undefined,
  clusterNodes: string | undefined,
): string | undefined {
  if (!clusterNodes) return redisUrl;
  const base = redisUrl && !isClusterUrl(redisUrl) ? new URL(redisUrl) : undefined;
  const scheme = base?.protocol === "rediss:" ? "rediss" : "redis";
  const auth = base && (base.username || base.password) ? `${base.username}:${base.password}@` : "";
  const seeds = clusterNodes
    .split(",")
    .map((node) => node.trim())
    .join(",");
  return `${scheme}+cluster://${auth}${seeds}`;
}
