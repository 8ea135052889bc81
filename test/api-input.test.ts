import { beforeAll, describe, expect, it } from "vitest";
import { ADMIN_TOKEN, useStack, waitFor } from "./helpers/stack.js";
import { revokeApiKey } from "../src/billing/customers/customers.js";

const stack = useStack({ env: { BODY_LIMIT: "64kb" } });
let key: string;

beforeAll(async () => {
  key = (await stack.customer()).key;
});

const valid = { model: "gpt-4o-mini", messages: [{ role: "user", content: "hi" }] };

const BAD_BODIES: Array<[what: string, body: string, status: number, code: string]> = [
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
];

describe("bad input", () => {
  it.each(BAD_BODIES)("%s → %s with an OpenAI-style error", async (_what, body, status, code) => {
    const res = await stack.chat(key, body);
    expect(res.status).toBe(status);
    expect(res.body.error?.code).toBe(code);
    expect(res.body.error?.type).toBe("invalid_request_error");
    expect(res.body.error?.message).toEqual(expect.any(String));
  });

  it("names the missing parameter", async () => {
    const res = await stack.chat(key, JSON.stringify({ model: "gpt-4o-mini" }));
    expect(res.body.error?.param).toBe("messages");
  });

  it("refuses a missing, malformed or unknown API key with 401", async () => {
    for (const authorization of [undefined, "Bearer", "Basic abc", "Bearer ml_unknown"]) {
      const res = await stack.chat(null, valid, { headers: authorization ? { authorization } : {} });
      expect(res.status).toBe(401);
      expect(res.body.error?.type).toBe("authentication_error");
    }
  });

  it("records when a key was last used", async () => {
    const customer = await stack.customer();
    const res = await stack.chat(customer.key, valid);
    expect(res.status).toBe(200);
    const row = await waitFor(() =>
      stack.db("api_keys").where({ id: customer.keyId }).whereNotNull("last_used_at").first(),
    );
    expect(row.last_used_at).toBeInstanceOf(Date);
  });

  it("refuses a revoked key with 401", async () => {
    const customer = await stack.customer();
    await revokeApiKey(stack.db, customer.keyId);
    expect((await stack.chat(customer.key, valid)).status).toBe(401);
  });

  it("refuses a key revoked after use within a few seconds (lookups are cached briefly)", async () => {
    const customer = await stack.customer();
    const ask = () => stack.chat(customer.key, valid, { headers: { prefer: "respond-async" } });
    expect((await ask()).status).toBe(202);
    await revokeApiKey(stack.db, customer.keyId);
    await waitFor(async () => (await ask()).status === 401, {
      timeoutMs: 5_000,
      intervalMs: 200,
      what: "401",
    });
  });

  it("refuses an invalid Idempotency-Key", async () => {
    const res = await stack.chat(key, valid, { headers: { "idempotency-key": "x".repeat(300) } });
    expect(res.status).toBe(400);
    expect(res.body.error?.code).toBe("invalid_idempotency_key");
  });

  it("answers unknown routes with a 404 in the same shape", async () => {
    const res = await fetch(`${stack.url}/v2/nothing`);
    expect(res.status).toBe(404);
    expect(((await res.json()) as { error: { type: string } }).error.type).toBe("not_found_error");
  });

  it("keeps serving after all of that: the refused requests leave nothing, the next one is answered and billed once", async () => {
    const customer = await stack.customer();
    for (const [what, body, status] of BAD_BODIES) {
      expect((await stack.chat(customer.key, body)).status, what).toBe(status);
    }
    expect(
      (await stack.chat(customer.key, valid, { headers: { "idempotency-key": "x".repeat(300) } })).status,
    ).toBe(400);

    const res = await stack.chat(customer.key, valid);
    expect(res.status).toBe(200);
    expect(res.body.object).toBe("chat.completion");
    const rows = () => stack.db("usage_events").where({ customer_id: customer.customerId });
    await waitFor(async () => (await rows()).length > 0, { what: "the chat's usage row" });
    expect((await rows()).map((r) => r.request_id)).toEqual([res.requestId]);
    expect(await stack.db("chat_requests").where({ customer_id: customer.customerId })).toHaveLength(0);
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
