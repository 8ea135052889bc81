import { rmSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase } from "./helpers/db.js";
import { startRedisServer, tempDir, type RedisServerHandle } from "./helpers/redis-server.js";
import { startStack, waitFor, type Stack } from "./helpers/stack.js";

let database: Awaited<ReturnType<typeof createTestDatabase>>;
let redis: RedisServerHandle;
let stack: Stack;
let key: string;
let dir: string;

beforeAll(async () => {
  dir = tempDir("meterline-redis-outage");
  redis = await startRedisServer({ dir, fsyncAlways: true });
  database = await createTestDatabase();
  stack = await startStack({ databaseUrl: database.url, env: { REDIS_URL: redis.url } });
  key = (await stack.customer()).key;
});
afterAll(async () => {
  await stack?.close();
  await redis?.stop();
  await database?.drop();
  rmSync(dir, { recursive: true, force: true });
});

const chat = () =>
  fetch(`${stack.url}/v1/chat/completions`, {
    method: "POST",
    headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
    body: JSON.stringify({ model: "gpt-4o-mini", messages: [{ role: "user", content: "are you there?" }] }),
  });

describe("when Redis goes away", () => {
  it("answers 503 within a second, fails /readyz, stays up, and recovers without a restart", async () => {
    expect((await chat()).status).toBe(200);

    await redis.kill();
    const started = Date.now();
    const refused = await chat();
    const elapsed = Date.now() - started;
    expect(refused.status).toBe(503);
    expect(elapsed).toBeLessThan(1_000);
    expect(refused.headers.get("retry-after")).toBe("1");
    expect(((await refused.json()) as { error: { type: string } }).error.type).toBe("service_unavailable");
    const ready = await fetch(`${stack.url}/readyz`);
    expect(ready.status).toBe(503);
    expect(((await ready.json()) as { checks: { redis: string; postgres: string } }).checks.postgres).toBe(
      "ok",
    );
    expect((await fetch(`${stack.url}/healthz`)).status).toBe(200);

    await redis.restart();
    const served = await waitFor(async () => ((await chat()).status === 200 ? true : undefined), {
      timeoutMs: 20_000,
      intervalMs: 200,
      what: "a chat to succeed after Redis came back",
    });
    expect(served).toBe(true);
    expect((await fetch(`${stack.url}/readyz`)).status).toBe(200);
    expect(await stack.db("usage_events").count({ n: "*" }).first()).toEqual({ n: 2 });
  });
});
