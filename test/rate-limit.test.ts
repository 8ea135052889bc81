import { beforeAll, describe, expect, it } from "vitest";
import { ask, useStack } from "./helpers/stack.js";

const stack = useStack({ env: { RATE_LIMIT_PER_MINUTE: "60", RATE_LIMIT_PLANS: "pro=0" } });
let second: { url: string };

beforeAll(async () => {
  // A second web process: its own deps and connections, the same Redis and queue prefix.
  second = await stack.startWeb();
});

const chat = (url: string, key: string) =>
  stack.chat(key, ask(), { url, headers: { prefer: "respond-async" } });

describe("the per-key rate limit", () => {
  it("is shared by two web apps: the 61st request in the minute gets 429 with Retry-After", async () => {
    const { key } = await stack.customer();
    const statuses: number[] = [];
    for (let i = 0; i < 60; i++) statuses.push((await chat(i % 2 ? second.url : stack.url, key)).status);
    expect(statuses.every((s) => s === 202)).toBe(true);

    const limited = await chat(second.url, key);
    expect(limited.status).toBe(429);
    const retryAfter = Number(limited.headers.get("retry-after"));
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(60);
    expect(limited.body).toMatchObject({
      error: { type: "rate_limit_error", code: "rate_limit_exceeded" },
    });
    expect((await chat(stack.url, key)).status).toBe(429);

    // Limits are per key: another customer's key is untouched.
    const other = await stack.customer();
    expect((await chat(stack.url, other.key)).status).toBe(202);
  });

  it("follows the plan's override (0 = unlimited)", async () => {
    const { key } = await stack.customer({ planId: "pro" });
    const statuses = await Promise.all(
      Array.from({ length: 70 }, () => chat(stack.url, key).then((r) => r.status)),
    );
    expect(statuses.filter((s) => s === 202)).toHaveLength(70);
  });
});
