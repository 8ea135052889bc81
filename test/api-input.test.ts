import { beforeAll, describe, expect, it } from "vitest";
import { ADMIN_TOKEN, useStack, waitFor } from "./helpers/stack.js";
import { revokeApiKey } from "../src/billing/customers/customers.js";

const stack = useStack({ env: { BODY_LIMIT: "64kb" } });
let key: string;

beforeAll(async () => {
  key = (await stack.customer()).key;
});

async function post(body: string | undefined, headers: Record<string, string> = {}) {
  const res = await fetch(`${stack.url}/v1/chat/completions`, {
    method: "POST",
    headers: { authorization: `Bearer ${key}`, "content-type": "application/json", ...headers },
    body,
  });
  const text = await res.text();
  return {
    status: res.status,
    body: JSON.parse(text) as {
      error: { message: string; type: string; code: string | null; param?: string | null };
    },
  };
}

const valid = { model: "gpt-4o-mini", messages: [{ role: "user", content: "hi" }] };

describe("bad input", () => {
  it.each([
    ["invalid JSON", "{not json", 400, "invalid_json"],
    ["an empty body", "", 400, "invalid_body"],
    ["a JSON array", "[]", 400, "invalid_body"],
    ["missing messages", JSON.stringify({ model: "gpt-4o-mini" }), 400, "missing_required_parameter"],
    ["an empty messages array", JSON.stringify({ ...valid, messages: [] }), 400, "invalid_value"],
    ["messages of the wrong type", JSON.stringify({ ...valid, messages: "hi" }), 400, "invalid_value"],
    ["a numeric model", JSON.stringify({ ...valid, model: 4 }), 400, "invalid_value"],
    [
      "an unknown role",
      JSON.stringify({ ...valid, messages: [{ role: "wizard", content: "x" }] }),
      400,
      "invalid_value",
    ],
    ["a negative max_tokens", JSON.stringify({ ...valid, max_tokens: -1 }), 400, "invalid_value"],
    ["an unknown model", JSON.stringify({ ...valid, model: "no-such-model" }), 400, "model_not_found"],
    [
      "an over-long body",
      JSON.stringify({ ...valid, messages: [{ role: "user", content: "x".repeat(100_000) }] }),
      413,
      "body_too_large",
    ],
  ])("%s → %s with an OpenAI-style error", async (_what, body, status, code) => {
    const res = await post(body);
    expect(res.status).toBe(status);
    expect(res.body.error.code).toBe(code);
    expect(res.body.error.type).toBe("invalid_request_error");
    expect(res.body.error.message).toEqual(expect.any(String));
  });

  it("names the missing parameter", async () => {
    const res = await post(JSON.stringify({ model: "gpt-4o-mini" }));
    expect(res.body.error.param).toBe("messages");
  });

  it("refuses a missing, malformed or unknown API key with 401", async () => {
    for (const authorization of [undefined, "Bearer", "Basic abc", "Bearer ml_unknown"]) {
      const res = await fetch(`${stack.url}/v1/chat/completions`, {
        method: "POST",
        headers: { "content-type": "application/json", ...(authorization ? { authorization } : {}) },
        body: JSON.stringify(valid),
      });
      expect(res.status).toBe(401);
      const body = (await res.json()) as { error: { type: string } };
      expect(body.error.type).toBe("authentication_error");
    }
  });

  it("records when a key was last used", async () => {
    const customer = await stack.customer();
    const res = await fetch(`${stack.url}/v1/chat/completions`, {
      method: "POST",
      headers: { authorization: `Bearer ${customer.key}`, "content-type": "application/json" },
      body: JSON.stringify(valid),
    });
    expect(res.status).toBe(200);
    const row = await waitFor(() =>
      stack.db("api_keys").where({ id: customer.keyId }).whereNotNull("last_used_at").first(),
    );
    expect(row.last_used_at).toBeInstanceOf(Date);
  });

  it("refuses a revoked key with 401", async () => {
    const customer = await stack.customer();
    await revokeApiKey(stack.db, customer.keyId);
    const res = await fetch(`${stack.url}/v1/chat/completions`, {
      method: "POST",
      headers: { authorization: `Bearer ${customer.key}`, "content-type": "application/json" },
      body: JSON.stringify(valid),
    });
    expect(res.status).toBe(401);
  });

  it("refuses a key revoked after use within a few seconds (lookups are cached briefly)", async () => {
    const customer = await stack.customer();
    const ask = () =>
      fetch(`${stack.url}/v1/chat/completions`, {
        method: "POST",
        headers: {
          authorization: `Bearer ${customer.key}`,
          "content-type": "application/json",
          prefer: "respond-async",
        },
        body: JSON.stringify(valid),
      });
    expect((await ask()).status).toBe(202);
    await revokeApiKey(stack.db, customer.keyId);
    await waitFor(async () => (await ask()).status === 401, {
      timeoutMs: 5_000,
      intervalMs: 200,
      what: "401",
    });
  });

  it("refuses an invalid Idempotency-Key", async () => {
    const res = await post(JSON.stringify(valid), { "idempotency-key": "x".repeat(300) });
    expect(res.status).toBe(400);
    expect(res.body.error.code).toBe("invalid_idempotency_key");
  });

  it("answers unknown routes with a 404 in the same shape", async () => {
    const res = await fetch(`${stack.url}/v2/nothing`);
    expect(res.status).toBe(404);
    expect(((await res.json()) as { error: { type: string } }).error.type).toBe("not_found_error");
  });

  it("keeps serving after all of that", async () => {
    const res = await post(JSON.stringify(valid));
    expect(res.status).toBe(200);
    expect(await stack.db("usage_events").count({ n: "*" }).first()).toMatchObject({ n: expect.anything() });
  });
});

describe("admin surface", () => {
  it("serves Bull Board only with the admin token, as Bearer or as a basic-auth password", async () => {
    expect((await fetch(`${stack.url}/admin/queues`)).status).toBe(401);
    expect(
      (
        await fetch(`${stack.url}/admin/queues`, {
          headers: { authorization: "Bearer wrong-token-0123456789" },
        })
      ).status,
    ).toBe(401);
    const bearer = await fetch(`${stack.url}/admin/queues/api/queues`, {
      headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
    });
    expect(bearer.status).toBe(200);
    const queues = (await bearer.json()) as { queues: Array<{ name: string }> };
    expect(queues.queues.map((q) => q.name)).toContain("chat");
    const basic = Buffer.from(`admin:${ADMIN_TOKEN}`).toString("base64");
    expect(
      (await fetch(`${stack.url}/admin/queues`, { headers: { authorization: `Basic ${basic}` } })).status,
    ).toBe(200);
  });

  it("reports readiness of Postgres and Redis", async () => {
    const res = await fetch(`${stack.url}/readyz`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: "ok", checks: { postgres: "ok", redis: "ok" } });
    expect((await fetch(`${stack.url}/healthz`)).status).toBe(200);
  });
});
