import { rmSync } from "node:fs";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startRedisServer, tempDir, type RedisServerHandle } from "./helpers/redis-server.js";
import { redisProductionWarnings } from "../src/redis-checks.js";

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
});
