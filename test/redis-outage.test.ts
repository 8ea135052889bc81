import { beforeAll, describe, expect, it } from "vitest";
import { ask, useStack, waitFor } from "./helpers/stack.js";

// A private Redis: the test kills it, and a write it acknowledged must survive that.
const stack = useStack({ redis: "private-fsync" });
let key: string;

beforeAll(async () => {
  key = (await stack.customer()).key;
});

const chat = () => stack.chat(key, ask("are you there?"));

describe("when Redis goes away", () => {
  it("answers 503 within a second, fails /readyz, stays up, and recovers without a restart", async () => {
    expect((await chat()).status).toBe(200);

    await stack.redisServer.kill();
    const started = Date.now();
    const refused = await chat();
    const elapsed = Date.now() - started;
    expect(refused.status).toBe(503);
    expect(elapsed).toBeLessThan(1_000);
    expect(refused.headers.get("retry-after")).toBe("1");
    expect(refused.body.error?.type).toBe("service_unavailable");
    const ready = await fetch(`${stack.url}/readyz`);
    expect(ready.status).toBe(503);
    expect(((await ready.json()) as { checks: { redis: string; postgres: string } }).checks.postgres).toBe(
      "ok",
    );
    expect((await fetch(`${stack.url}/healthz`)).status).toBe(200);

    await stack.redisServer.restart();
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
