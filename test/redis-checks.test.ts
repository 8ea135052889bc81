import { rmSync } from "node:fs";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startRedisServer, tempDir, type RedisServerHandle } from "./helpers/redis-server.js";
import { redisProductionWarnings, warnAboutRedis } from "../src/platform/redis-checks.js";
import { createProducerRedis } from "../src/platform/redis.js";
import { createLogger } from "../src/platform/logger.js";

// A private Redis: these tests change its configuration.
let server: RedisServerHandle;
let redis: Redis;
let dir: string;

beforeAll(async () => {
  dir = tempDir("meterline-redis-checks");
  server = await startRedisServer({ dir, appendonly: false });
  redis = new Redis(server.url);
});
afterAll(async () => {
  redis?.disconnect();
  await server?.stop();
  rmSync(dir, { recursive: true, force: true });
});

describe("the production Redis boot check", () => {
  it("warns about an evicting policy and a Redis without any persistence", async () => {
    await redis.config("SET", "maxmemory-policy", "allkeys-lru");
    const warnings = await redisProductionWarnings(redis);
    expect(warnings).toHaveLength(2);
    expect(warnings[0]).toMatch(/allkeys-lru.*noeviction/);
    expect(warnings[1]).toMatch(/neither AOF nor RDB/);
  });

  it("is silent for noeviction with AOF on", async () => {
    await redis.config("SET", "maxmemory-policy", "noeviction");
    await redis.config("SET", "appendonly", "yes");
    expect(await redisProductionWarnings(redis)).toEqual([]);
  });

  it("checks on a producer connection that is still connecting, instead of failing at once", async () => {
    await redis.config("SET", "maxmemory-policy", "allkeys-lru");
    const lines: string[] = [];
    const logger = createLogger("info", "test", { write: (line: string) => void lines.push(line) });
    // enableOfflineQueue is off on the API's connection: a command sent before "ready" fails.
    const fresh = createProducerRedis(server.url);
    try {
      await warnAboutRedis(fresh, logger);
    } finally {
      fresh.disconnect();
    }
    const messages = lines.map((l) => (JSON.parse(l) as { msg: string }).msg);
    expect(messages.some((m) => /UNSAFE REDIS FOR PRODUCTION: .*allkeys-lru/.test(m))).toBe(true);
    expect(messages.some((m) => /could not check/.test(m))).toBe(false);
    await redis.config("SET", "maxmemory-policy", "noeviction");
  });
});
