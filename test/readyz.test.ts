import { describe, expect, it } from "vitest";
import { ADMIN_TOKEN, useStack, waitFor } from "./helpers/stack.js";

// A private Redis: the test kills it.
const stack = useStack({ redis: "private", worker: false });

const readyz = async (headers: Record<string, string> = {}) => {
  const res = await fetch(`${stack.url}/readyz`, { headers });
  return { status: res.status, text: await res.text() };
};

describe("/readyz", () => {
  it("names the dependency that is down without its error text, unless the admin token is given", async () => {
    expect(JSON.parse((await readyz()).text)).toEqual({
      status: "ok",
      checks: { postgres: "ok", redis: "ok" },
    });

    await stack.redisServer.kill();
    const anonymous = await readyz();
    expect(anonymous.status).toBe(503);
    expect(JSON.parse(anonymous.text)).toEqual({
      status: "unavailable",
      checks: { postgres: "ok", redis: "down" },
    });
    expect(anonymous.text).not.toMatch(/writeable|ECONNREFUSED|timed out|127\.0\.0\.1|connect/i);

    const wrongToken = await readyz({ authorization: "Bearer not-the-admin-token-at-all" });
    expect(JSON.parse(wrongToken.text).details).toBeUndefined();

    const admin = await readyz({ authorization: `Bearer ${ADMIN_TOKEN}` });
    expect(admin.status).toBe(503);
    const body = JSON.parse(admin.text) as { checks: object; details: { redis: string; postgres?: string } };
    expect(body.checks).toEqual({ postgres: "ok", redis: "down" });
    expect(body.details.redis.length).toBeGreaterThan(0);
    expect(body.details.postgres).toBeUndefined();

    await stack.redisServer.restart();
    const back = await waitFor(async () => ((await readyz()).status === 200 ? true : undefined), {
      timeoutMs: 20_000,
      intervalMs: 100,
      what: "/readyz to report ready after Redis came back",
    });
    expect(back).toBe(true);
  });
});
