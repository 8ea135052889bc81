import { describe, expect, it } from "vitest";
import OpenAI from "openai";
import { grantCredits } from "../src/billing/credits/grants.js";
import { creditBalance } from "../src/billing/credits/balance.js";
import { upsertPlan } from "../src/billing/pricing/plans.js";
import { useStack, waitFor } from "./helpers/stack.js";
import { recordUsage } from "../src/billing/ledger/ledger.js";
import { sweepCreditHolds } from "../src/billing/credits/hold-sweeper.js";
import { chatPending } from "../jobs/maintenance.js";
import type { ChatJobData } from "../src/queues/queues.js";

// Every answer is 5,000 tokens unless capped: only the reservation's cap keeps a chat in its credits.
const stack = useStack({ emulator: { answerTokens: 5_000 } });

const RATE = 2_000; // micros per 1K tokens: 2 micros a token
const ask = (content: string, maxTokens?: number) => ({
  model: "gpt-4o-mini",
  messages: [{ role: "user" as const, content }],
  ...(maxTokens ? { max_tokens: maxTokens } : {}),
});

async function prepaidCustomer(balanceMicros: number) {
  await upsertPlan(stack.db, {
    id: "prepaid-spend",
    name: "Prepaid",
    kind: "prepaid",
    overagePer1kMicros: RATE,
  });
  const customer = await stack.customer({ planId: "prepaid-spend" });
  if (balanceMicros > 0) {
    await grantCredits(stack.db, {
      customerId: customer.customerId,
      amountMicros: balanceMicros,
      source: "manual",
    });
  }
  return customer;
}

const rowsOf = (customerId: string) =>
  stack
    .db("usage_events")
    .where({ customer_id: customerId })
    .select("request_id", "billable_tokens", "charge_micros", "credit_micros", "credit_tokens");

describe("prepaid credits spent in real time", () => {
  it("50 concurrent chats against a balance that covers about ten: credits never overshoot, the rest 402", async () => {
    // ~15 prompt tokens + 100 completion tokens ≈ 230 micros a chat: 2,300 covers about ten.
    const BALANCE = 2_300;
    const { customerId, openai } = await prepaidCustomer(BALANCE);

    const results = await Promise.allSettled(
      Array.from({ length: 50 }, (_, i) => openai.chat.completions.create(ask(`question number ${i}`, 100))),
    );

    const answered = results.flatMap((r) => (r.status === "fulfilled" ? [r.value] : []));
    const refused = results.flatMap((r) =>
      r.status === "rejected" ? [r.reason as InstanceType<typeof OpenAI.APIError>] : [],
    );
    expect(answered.length).toBeGreaterThanOrEqual(8);
    expect(answered.length).toBeLessThanOrEqual(12);
    expect(refused.length).toBe(50 - answered.length);
    for (const err of refused) {
      expect(err.status).toBe(402);
      expect(err.code).toBe("insufficient_credits");
      expect((err.error as { balance_micros?: number }).balance_micros).toBeGreaterThanOrEqual(0);
    }
    // A chat the balance covered only in part is cut there, as a provider's own cap would.
    for (const c of answered) {
      if (c.usage!.completion_tokens < 100) expect(c.choices[0]!.finish_reason).toBe("length");
    }

    const rows = await rowsOf(customerId);
    expect(rows).toHaveLength(answered.length);
    const consumed = rows.reduce((sum, r) => sum + Number(r.credit_micros), 0);
    expect(consumed).toBeLessThanOrEqual(BALANCE); // 0 overshoot
    expect(consumed).toBe(BALANCE - (await creditBalance(stack.db, customerId)));
    // Each answer says what it cost; credits paid all of it, so nothing reaches the invoice.
    const costOf = (c: OpenAI.ChatCompletion) => (c.usage as unknown as { cost: number }).cost;
    expect(answered.every((c) => costOf(c) > 0)).toBe(true);
    expect(rows.every((r) => Number(r.credit_micros) === Number(r.charge_micros))).toBe(true);
    const totalCost = answered.reduce((sum, c) => sum + Math.round(costOf(c) * 1e6), 0);
    expect(totalCost).toBe(consumed);

    // Nothing is left reserved: the real-time counter agrees with Postgres.
    expect(await stack.web.creditCounter.available(customerId)).toBe(
      await creditBalance(stack.db, customerId),
    );
  });

  it("answers 402 insufficient_credits with the balance when there are no credits, and queues nothing", async () => {
    const { customerId, key } = await prepaidCustomer(0);
    const res = await stack.chat(key, ask("hello"));
    expect(res.status).toBe(402);
    expect(res.body).toMatchObject({
      error: { type: "insufficient_quota", code: "insufficient_credits", balance_micros: 0 },
    });
    expect((res.body as { error: { message: string } }).error.message).toMatch(
      /POST \/v1\/credits\/checkout/,
    );
    expect(await rowsOf(customerId)).toHaveLength(0);
  });

  it("serves again once credits are granted through the admin API", async () => {
    const { customerId, key } = await prepaidCustomer(0);
    expect((await stack.chat(key, ask("before", 10))).status).toBe(402);
    const grant = await fetch(`${stack.url}/admin/customers/${customerId}/credits`, {
      method: "POST",
      headers: { authorization: `Bearer ${stack.config.adminToken}`, "content-type": "application/json" },
      body: JSON.stringify({ amount_micros: 10_000 }),
    });
    expect(grant.status).toBe(201);
    const res = await stack.chat(key, ask("after", 10));
    expect(res.status).toBe(200);
    expect(Number(res.headers.get("meterline-credit-balance-micros"))).toBe(
      await creditBalance(stack.db, customerId),
    );
  });

  it("cuts a stream when its reservation is spent, and bills exactly what was produced", async () => {
    // Covers the prompt and about 60 completion tokens of the 5,000 the provider would send.
    const BALANCE = 150;
    const { customerId, openai } = await prepaidCustomer(BALANCE);
    const stream = await openai.chat.completions.create({
      ...ask("tell me a long story"),
      stream: true,
      stream_options: { include_usage: true },
    });
    let finish: string | null = null;
    let text = "";
    let usage: (OpenAI.CompletionUsage & { cost?: number }) | undefined;
    for await (const chunk of stream) {
      finish = chunk.choices[0]?.finish_reason ?? finish;
      text += chunk.choices[0]?.delta?.content ?? "";
      usage = chunk.usage ?? usage;
    }
    expect(finish).toBe("length");
    expect(text.length).toBeGreaterThan(0);
    const [row] = await rowsOf(customerId);
    expect(Number(row!.billable_tokens)).toBe(usage!.total_tokens);
    expect(Number(row!.credit_micros)).toBeLessThanOrEqual(BALANCE);
    expect(Number(row!.credit_micros)).toBe(Number(row!.charge_micros));
    expect(Math.round(usage!.cost! * 1e6)).toBe(Number(row!.charge_micros));
    expect(await creditBalance(stack.db, customerId)).toBe(BALANCE - Number(row!.credit_micros));
  });
});

describe("credits on a tiered plan", () => {
  it("pay the overage as it is used, so the invoice and Stripe see only what they did not pay", async () => {
    await upsertPlan(stack.db, {
      id: "tiered-credits",
      name: "Tiered",
      kind: "tiered",
      includedTokens: 1_000,
      overagePer1kMicros: RATE,
    });
    const { customerId, key } = await stack.customer({ planId: "tiered-credits" });
    await grantCredits(stack.db, { customerId, amountMicros: 1_000, source: "promotional" });

    // Inside the allowance: free, and the answer says so.
    const inside = await stack.chat(key, ask("first", 500));
    expect(inside.status).toBe(200);
    expect(inside.headers.get("meterline-charge-micros")).toBe("0");
    const remaining = Number(inside.headers.get("meterline-allowance-remaining-tokens"));
    expect(remaining).toBeGreaterThan(0);
    expect(remaining).toBeLessThan(1_000);

    // Crosses the allowance: only the tokens past it are charged, credits pay them.
    const crossing = await stack.chat(key, ask("second", 1_000));
    const body = crossing.body as unknown as {
      usage: { total_tokens: number; cost: number; cost_details: Record<string, number> };
    };
    const past = body.usage.total_tokens - remaining;
    expect(body.usage.cost_details.charge_micros).toBe(past * 2);
    expect(body.usage.cost).toBeCloseTo((past * 2) / 1e6, 9);
    const paidByCredits = Math.min(past * 2, 1_000);
    expect(body.usage.cost_details.credits_micros).toBe(paidByCredits);
    expect(body.usage.cost_details.invoiced_micros).toBe(past * 2 - paidByCredits);
    expect(crossing.headers.get("meterline-allowance-remaining-tokens")).toBe("0");

    // GET /v1/usage: the invoice's overage leaves out what credits paid.
    const usage = (await (
      await fetch(`${stack.url}/v1/usage`, { headers: { authorization: `Bearer ${key}` } })
    ).json()) as {
      credits: { balance_micros: number; paid_tokens: number; paid_micros: number };
      charges: { overage_micros: number; credits_paid_micros: number; usage_micros: number };
    };
    expect(usage.credits).toEqual({
      balance_micros: 1_000 - paidByCredits,
      paid_tokens: paidByCredits / 2,
      paid_micros: paidByCredits,
    });
    expect(usage.charges.usage_micros).toBe(past * 2);
    expect(usage.charges.overage_micros).toBe(past * 2 - paidByCredits);
  });
});

describe("the cost of every request in its answer", () => {
  const costOf = (body: unknown) => (body as { usage: { cost: number } }).usage.cost;

  it("sync, keyed replay, async result and the stream's usage chunk all carry usage.cost", async () => {
    const { customerId, key } = await stack.customer({ planId: "usage" }); // 2 micros a token
    const sync = await stack.chat(key, ask("sync", 20));
    expect(sync.status).toBe(200);
    const syncCharge = Number(sync.headers.get("meterline-charge-micros"));
    expect(syncCharge).toBeGreaterThan(0);
    expect(costOf(sync.body)).toBe(syncCharge / 1e6);

    // A repeated Idempotency-Key answers the kept completion, cost included.
    const first = await stack.chat(key, ask("keyed", 20), { headers: { "idempotency-key": "cost-k1" } });
    const again = await stack.chat(key, ask("keyed", 20), { headers: { "idempotency-key": "cost-k1" } });
    expect(costOf(again.body)).toBe(costOf(first.body));
    expect(again.headers.get("meterline-charge-micros")).toBe(first.headers.get("meterline-charge-micros"));

    const queued = await stack.chat(key, ask("async", 20), { headers: { prefer: "respond-async" } });
    expect(queued.status).toBe(202);
    const id = (queued.body as { id: string }).id;
    const result = await waitForResult(key, id);
    expect(costOf(result.completion)).toBeGreaterThan(0);

    const res = await stack.chatStream(key, {
      ...ask("stream", 20),
      stream_options: { include_usage: true },
    });
    const text = await res.text();
    const usageChunk = text
      .split("\n")
      .filter((l) => l.startsWith("data: {"))
      .map((l) => JSON.parse(l.slice(6)) as { choices: unknown[]; usage?: unknown })
      .find((c) => c.usage);
    expect(usageChunk?.choices).toEqual([]);
    expect(costOf(usageChunk)).toBeGreaterThan(0);

    const charged = await stack
      .db("usage_events")
      .where({ customer_id: customerId })
      .sum("charge_micros as m");
    const answered = [sync.body, first.body, result.completion, usageChunk].map((b) =>
      Math.round(costOf(b) * 1e6),
    );
    expect(answered.reduce((a, b) => a + b, 0)).toBe(Number(charged[0]!.m));
  });

  const waitForResult = (key: string, id: string) =>
    waitFor(
      async () => {
        const res = await fetch(`${stack.url}/v1/chats/${id}`, {
          headers: { authorization: `Bearer ${key}` },
        });
        const body = (await res.json()) as { status: string; completion: unknown };
        return body.status === "succeeded" ? body : undefined;
      },
      { what: `chat ${id} to succeed` },
    );
});

describe("credit reservations no chat will settle", () => {
  it("are given back by the sweep: released when no job holds them, settled when the row exists, kept while the job waits", async () => {
    const { customerId } = await prepaidCustomer(10_000);
    const counter = stack.web.creditCounter;
    const reserve = (requestId: string) =>
      counter.reserve(customerId, requestId, { maxMicros: 1_000, minMicros: 1 });

    // A web process that died between reserving and enqueuing: no job, no row.
    await reserve("chat_orphan");
    // A chat whose row was written (credits paid 300) but whose settle was lost.
    await reserve("chat_unsettled");
    await recordUsage(stack.db, {
      requestId: "chat_unsettled",
      customerId,
      model: "gpt-4o-mini",
      promptTokens: 100,
      cachedTokens: 0,
      cacheWriteTokens: 0,
      completionTokens: 50,
      reasoningTokens: 0,
      billableTokens: 150,
      providerCostMicros: 1,
      priceMicros: 300,
      source: "provider",
      planId: "prepaid-spend",
      pricing: { includedTokens: 0, overagePer1kMicros: RATE },
    });
    // A chat still waiting in the queue.
    await reserve("chat_waiting");
    const waiting = await stack.web.queues.chat.add("chat", {} as ChatJobData, {
      jobId: "chat_waiting",
      delay: 3_600_000,
    });
    expect(await counter.available(customerId)).toBe(10_000 - 3 * 1_000);

    const swept = await sweepCreditHolds(stack.web, {
      olderThan: new Date(Date.now() + 1_000),
      jobExists: chatPending(stack.web.queues),
    });
    expect(swept).toEqual({ settled: 1, released: 1, kept: 1 });
    // Only the waiting chat still holds its 1,000; the rest is the Postgres balance.
    expect(await counter.available(customerId)).toBe((await creditBalance(stack.db, customerId)) - 1_000);
    await waiting.remove();
  });
});
