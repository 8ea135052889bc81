import { describe, expect, it } from "vitest";
import { pollUntilFinished } from "../src/queues/chat-replies.js";
import { useStack } from "./helpers/stack.js";
import { recordUsage } from "../src/billing/ledger/ledger.js";
import { findPlan } from "../src/billing/pricing/plans.js";
import type { ChatJobData } from "../src/queues/queues.js";

const stack = useStack({ env: { DEFAULT_MODEL_PRICE: "1000000,500000,3000000" } });

type Summary = {
  period: { start: string; end: string; source: string };
  tokens: Record<string, number>;
  by_model: Array<{ model: string; billable_tokens: number }>;
  allowance: Record<string, number>;
  overage_tokens: number;
  hard_limit: { limit_tokens: number; remaining_tokens: number } | null;
  charges: Record<string, number | string> & { total_micros: number };
};

let seq = 0;
async function usage(
  customerId: string,
  planId: string,
  model: string,
  prompt: number,
  completion: number,
  at?: Date,
) {
  await recordUsage(stack.db, {
    requestId: `chat_test_${seq++}`,
    customerId,
    model,
    promptTokens: prompt,
    cachedTokens: 0,
    cacheWriteTokens: 0,
    completionTokens: completion,
    reasoningTokens: 0,
    billableTokens: prompt + completion,
    providerCostMicros: 0,
    priceMicros: 0,
    source: "provider",
    planId,
    pricing: (await findPlan(stack.db, planId))!,
    ...(at ? { createdAt: at } : {}),
  });
}

async function summary(key: string) {
  const res = await fetch(`${stack.url}/v1/usage`, { headers: { authorization: `Bearer ${key}` } });
  expect(res.status).toBe(200);
  return (await res.json()) as Summary;
}

describe("GET /v1/usage", () => {
  it("pure usage plan: every token at 2,000 micros per 1K, rounded once per period", async () => {
    const { customerId, key } = await stack.customer({ planId: "usage" });
    await usage(customerId, "usage", "gpt-4o-mini", 1_000, 234);
    await usage(customerId, "usage", "gpt-4o", 500, 67);
    const s = await summary(key);
    expect(s.tokens).toMatchObject({
      requests: 2,
      prompt_tokens: 1_500,
      completion_tokens: 301,
      billable_tokens: 1_801,
    });
    expect(s.by_model.map((m) => [m.model, m.billable_tokens])).toEqual([
      ["gpt-4o", 567],
      ["gpt-4o-mini", 1_234],
    ]);
    expect(s.allowance).toEqual({ included_tokens: 0, used_tokens: 0, remaining_tokens: 0 });
    expect(s.overage_tokens).toBe(1_801);
    // 1,801 × 2,000 / 1,000 = 3,602.
    expect(s.charges).toMatchObject({
      currency: "usd",
      base_fee_micros: 0,
      overage_micros: 3_602,
      total_micros: 3_602,
    });
    expect(s.period.source).toBe("calendar_month");
    expect(s.hard_limit).toBeNull();
  });

  it("tiered plan: the allowance covers exactly 2,000,000 tokens, then 1,500 micros per 1K rounded half up", async () => {
    const { customerId, key } = await stack.customer({ planId: "pro" });
    await usage(customerId, "pro", "gpt-4o-mini", 1_000_000, 999_999);
    let s = await summary(key);
    expect(s.allowance).toEqual({ included_tokens: 2_000_000, used_tokens: 1_999_999, remaining_tokens: 1 });
    expect(s.charges.total_micros).toBe(20_000_000);

    // This request crosses the boundary: 1 token is included, 333 are overage.
    await usage(customerId, "pro", "gpt-4o-mini", 300, 34);
    s = await summary(key);
    expect(s.allowance).toEqual({ included_tokens: 2_000_000, used_tokens: 2_000_000, remaining_tokens: 0 });
    expect(s.overage_tokens).toBe(333);
    // 333 × 1.5 = 499.5 → 500 (half up).
    expect(s.charges).toMatchObject({
      currency: "usd",
      base_fee_micros: 20_000_000,
      overage_micros: 500,
      total_micros: 20_000_500,
    });
  });

  it("hybrid plan: base fee plus every token at 1,000 micros per 1K", async () => {
    const { customerId, key } = await stack.customer({ planId: "team" });
    await usage(customerId, "team", "gpt-4.1", 8_000, 2_001);
    const s = await summary(key);
    expect(s.overage_tokens).toBe(10_001);
    expect(s.charges).toMatchObject({
      currency: "usd",
      base_fee_micros: 50_000_000,
      overage_micros: 10_001,
      total_micros: 50_010_001,
    });
  });

  it("free plan: allowance and hard limit remaining, nothing charged", async () => {
    const { customerId, key } = await stack.customer({ planId: "free" });
    await usage(customerId, "free", "gpt-4o-mini", 30_000, 10_000);
    const s = await summary(key);
    expect(s.allowance).toEqual({ included_tokens: 100_000, used_tokens: 40_000, remaining_tokens: 60_000 });
    expect(s.hard_limit).toEqual({ limit_tokens: 100_000, remaining_tokens: 60_000 });
    expect(s.charges.total_micros).toBe(0);
  });

  it("uses the customer's Stripe subscription period when one is known", async () => {
    const { customerId, key } = await stack.customer({ planId: "usage" });
    const day = 86_400_000;
    const start = new Date(Date.now() - 10 * day);
    const end = new Date(Date.now() + 20 * day);
    await stack.db("subscriptions").insert({
      id: `sub_${customerId}`,
      customer_id: customerId,
      stripe_customer_id: `cus_${customerId}`,
      status: "active",
      current_period_start: start,
      current_period_end: end,
    });
    await usage(customerId, "usage", "gpt-4o-mini", 100, 0, new Date(Date.now() - 11 * day));
    await usage(customerId, "usage", "gpt-4o-mini", 40, 2, new Date(Date.now() - day));
    const s = await summary(key);
    expect(s.period).toEqual({ start: start.toISOString(), end: end.toISOString(), source: "subscription" });
    expect(s.tokens.billable_tokens).toBe(42);
  });
});

describe("the token taxonomy", () => {
  it("prices cached and reasoning tokens as subsets, exactly as the price table says", async () => {
    const { customerId } = await stack.customer({ planId: "usage" });
    const data: ChatJobData = {
      requestId: "chat_taxonomy",
      customerId,
      planId: "usage",
      request: { model: "o4-mini", messages: [{ role: "user", content: "think" }] },
      bodyHash: "x",
      receivedAt: new Date().toISOString(),
      completion: {
        id: "chatcmpl-taxonomy",
        object: "chat.completion",
        created: 1,
        model: "o4-mini-2025-04-16",
        choices: [{ index: 0, message: { role: "assistant", content: "done" }, finish_reason: "stop" }],
        usage: {
          prompt_tokens: 2_048,
          completion_tokens: 500,
          total_tokens: 2_548,
          prompt_tokens_details: { cached_tokens: 1_024 },
          completion_tokens_details: { reasoning_tokens: 300 },
        },
      },
    };
    const job = await stack.web.queues.chat.add("chat", data, { jobId: data.requestId });
    await pollUntilFinished(stack.web.queues.chat, job!.id!, 10_000);
    const row = await stack.db("usage_events").where({ request_id: "chat_taxonomy" }).first();
    expect(row).toMatchObject({
      prompt_tokens: 2_048,
      cached_tokens: 1_024,
      completion_tokens: 500,
      reasoning_tokens: 300,
      billable_tokens: 2_548,
      source: "provider",
      plan_id: "usage",
    });
    // o4-mini per 1M: input $1.10, cached $0.275, output $4.40.
    // 1,024 × 1.1 + 1,024 × 0.275 + 500 × 4.4 = 1,126.4 + 281.6 + 2,200 = 3,608 micros.
    expect(row.provider_cost_micros).toBe(3_608);
    // 2,548 tokens at 2,000 micros per 1K = 5,096 micros.
    expect(row.price_micros).toBe(5_096);
  });

  it("records cached and reasoning tokens from the provider end to end", async () => {
    const { customerId, openai } = await stack.customer();
    const long = "tell me everything about metering ".repeat(300);
    const ask = { model: "o4-mini", messages: [{ role: "user" as const, content: long }] };
    await openai.chat.completions.create(ask);
    const second = await openai.chat.completions.create(ask);
    const cached = second.usage!.prompt_tokens_details!.cached_tokens!;
    const reasoning = second.usage!.completion_tokens_details!.reasoning_tokens!;
    expect(cached).toBeGreaterThan(0);
    expect(reasoning).toBeGreaterThan(0);
    const row = await stack
      .db("usage_events")
      .where({ customer_id: customerId })
      .orderBy("id", "desc")
      .first();
    expect(row).toMatchObject({ cached_tokens: cached, reasoning_tokens: reasoning });
    const p = second.usage!.prompt_tokens;
    const c = second.usage!.completion_tokens;
    const scaled = (p - cached) * 1_100_000 + cached * 275_000 + c * 4_400_000;
    expect(row.provider_cost_micros).toBe(Math.floor((2 * scaled + 1_000_000) / 2_000_000));
  });

  it("accepts a model missing from the price table at the configured default price", async () => {
    const { customerId, openai } = await stack.customer();
    const completion = await openai.chat.completions.create({
      model: "house-model",
      messages: [{ role: "user", content: "hello" }],
    });
    const row = await stack.db("usage_events").where({ customer_id: customerId }).first();
    const u = completion.usage!;
    // $1/M in, $3/M out.
    const scaled = u.prompt_tokens * 1_000_000 + u.completion_tokens * 3_000_000;
    expect(row.provider_cost_micros).toBe(Math.floor((2 * scaled + 1_000_000) / 2_000_000));
  });
});
