import { describe, expect, it } from "vitest";
import { loadConfig } from "../src/config.js";
import { clusterOptions } from "../src/platform/redis.js";

describe("configuring a Redis Cluster", () => {
  it("REDIS_CLUSTER_NODES takes REDIS_URL's scheme and credentials, which reach every node's options", () => {
    const config = loadConfig({
      REDIS_URL: "rediss://:s3cret@10.0.0.9:6380",
      REDIS_CLUSTER_NODES: "10.0.0.1:6379, 10.0.0.2:6379",
    });
    expect(config.redisUrl).toBe("rediss+cluster://:s3cret@10.0.0.1:6379,10.0.0.2:6379");
    const { nodes, options } = clusterOptions(config.redisUrl, { maxRetriesPerRequest: null });
    expect(nodes).toEqual([
      { host: "10.0.0.1", port: 6379 },
      { host: "10.0.0.2", port: 6379 },
    ]);
    expect(options.redisOptions).toMatchObject({
      password: "s3cret",
      tls: { rejectUnauthorized: true },
      maxRetriesPerRequest: null,
    });
  });

  it("accepts a redis+cluster:// REDIS_URL and refuses malformed seeds, naming the variable", () => {
    expect(loadConfig({ REDIS_URL: "redis+cluster://a:1,b:2" }).redisUrl).toBe("redis+cluster://a:1,b:2");
    expect(() => loadConfig({ REDIS_CLUSTER_NODES: "a:1,b" })).toThrow(/REDIS_CLUSTER_NODES/);
    expect(() => loadConfig({ REDIS_URL: "redis+cluster://a:1,b:port" })).toThrow(/REDIS_URL/);
  });
});
