import { beforeAll, describe, expect, it } from "vitest";
import { useStack, waitFor } from "./helpers/stack.js";
import { upsertPlan } from "../src/billing/pricing/plans.js";
import { updateCustomer } from "../src/billing/customers/customers.js";
import { estimatePromptTokens } from "../src/llm/usage.js";

const stack = useStack({ env: { CHAT_ATTEMPTS: "2" }, emulator: { latencyMs: 50 } });
// A second web process on the same Redis and Postgres: the quota must hold across both.
let second: { url: string };

const messages = [
  { role: "user" as const, content: "count one two three four five six seven eight nine ten" },
];
const MAX_TOKENS = 5;
// What the API reserves for one such request; the emulator answers with exactly max_tokens.
const perRequest = (await estimatePromptTokens({ messages })) + MAX_TOKENS;

beforeAll(async () => {
  second = await stack.startWeb();
});

async function cappedCustomer(requests: number) {
  const id = `capped${requests}_${Math.random().toString(36).slice(2, 8)}`;
  await upsertPlan(stack.db, {
    id,
    name: `Capped at ${requests}`,
    kind: "usage",
    overagePer1kMicros: 2_000,
    hardLimitTokens: requests * perRequest,
  });
  return stack.customer({ planId: id });
}

const chat = (url: string, key: string, headers: Record<string, string> = {}) =>
  stack.chat(key, { model: "gpt-4o-mini", messages, max_tokens: MAX_TOKENS }, { url, headers });

const recorded = async (customerId: string) => {
  const row = await stack.db("usage_events").where({ customer_id: customerId }).sum({ t: "billable_tokens" });
  return Number(row[0]?.t ?? 0);
};

describe("a hard limit", () => {
  it("lets at most 10 of 50 concurrent requests through two web processes, the rest get 402", async () => {
    const { customerId, key } = await cappedCustomer(10);
    const responses = await Promise.all(
      Array.from({ length: 50 }, (_, i) => chat(i % 2 === 0 ? stack.url : second.url, key)),
    );
    const statuses = responses.map((r) => r.status);
    const ok = statuses.filter((s) => s === 200).length;
    expect(ok).toBeGreaterThan(0);
    expect(ok).toBeLessThanOrEqual(10);
    expect(statuses.filter((s) => s === 402)).toHaveLength(50 - ok);

    const refused = responses.find((r) => r.status === 402)!;
    expect(refused.body).toMatchObject({
      error: { type: "insufficient_quota", code: "quota_exceeded" },
    });
    const limit = 10 * perRequest;
    expect(await recorded(customerId)).toBeLessThanOrEqual(limit + perRequest);
    // The emulator answers with exactly the reserved tokens, so nothing is left for an 11th request.
    expect(ok).toBe(10);
    expect((await chat(stack.url, key)).status).toBe(402);
  });

  it("gives a failed request's reservation back, on the sync path and in the worker", async () => {
    const { key } = await cappedCustomer(1);
    stack.emulator.injectFault({ kind: "status", status: 400, times: 1, message: "bad request" });
    expect((await chat(stack.url, key)).status).toBe(400);

    stack.emulator.injectFault({ kind: "status", status: 400, times: 1, message: "bad request" });
    const accepted = await chat(stack.url, key, { prefer: "respond-async" });
    expect(accepted.status).toBe(202);
    const location = accepted.headers.get("location")!;
    await waitFor(async () => {
      const poll = await fetch(`${stack.url}${location}`, { headers: { authorization: `Bearer ${key}` } });
      return ((await poll.json()) as { status: string }).status === "failed";
    });
    // The worker's failed handler releases shortly after the job fails.
    await waitFor(async () => (await chat(stack.url, key)).status === 200, { what: "a released quota" });
    expect((await chat(stack.url, key)).status).toBe(402);
  });

  it("does not reserve twice for a repeated Idempotency-Key", async () => {
    const { customerId, key } = await cappedCustomer(2);
    const headers = { "idempotency-key": "same-order" };
    for (let i = 0; i < 3; i++) expect((await chat(stack.url, key, headers)).status).toBe(200);
    expect((await chat(stack.url, key)).status).toBe(200);
    expect((await chat(stack.url, key)).status).toBe(402);
    expect(await recorded(customerId)).toBe(2 * perRequest);
  });

  it("refuses suspended (402) and canceled (403) customers with a clear message", async () => {
    const suspended = await stack.customer();
    await updateCustomer(stack.db, suspended.customerId, { status: "suspended" });
    const res = await chat(stack.url, suspended.key);
    expect(res.status).toBe(402);
    expect(res.body.error?.message).toMatch(/suspended/);

    const canceled = await stack.customer();
    await updateCustomer(stack.db, canceled.customerId, { status: "canceled" });
    const res2 = await chat(stack.url, canceled.key);
    expect(res2.status).toBe(403);
    expect(res2.body.error?.code).toBe("account_canceled");
  });
});
