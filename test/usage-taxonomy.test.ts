import type OpenAI from "openai";
import { beforeAll, describe, expect, it } from "vitest";
import { recordUsage, type UsageRow } from "../src/billing/ledger/ledger.js";
import {
  priceFor,
  providerCostMicros,
  type ModelPrice,
  type TokenUsage,
} from "../src/billing/pricing/prices.js";
import { usageFromProvider } from "../src/llm/usage.js";
import { useStack, waitFor } from "./helpers/stack.js";

const stack = useStack();
let customerId: string;
let key: string;

beforeAll(async () => {
  ({ customerId, key } = await stack.customer());
});

const tokens = (t: Partial<TokenUsage>): TokenUsage => ({
  promptTokens: 100,
  cachedTokens: 0,
  cacheWriteTokens: 0,
  completionTokens: 10,
  reasoningTokens: 0,
  ...t,
});

const row = (requestId: string, t: Partial<TokenUsage>): UsageRow => {
  const usage = tokens(t);
  return {
    requestId,
    customerId,
    model: "claude-sonnet-4-5",
    ...usage,
    billableTokens: usage.promptTokens + usage.completionTokens,
    providerCostMicros: 1,
    priceMicros: 1,
    source: "provider",
    planId: "usage",
    pricing: { includedTokens: 0, overagePer1kMicros: 2_000 },
  };
};

describe("the ledger's taxonomy constraint", () => {
  it.each([
    [
      "cache reads and writes above the prompt",
      { promptTokens: 100, cachedTokens: 60, cacheWriteTokens: 41 },
    ],
    ["negative cache writes", { cacheWriteTokens: -1 }],
    ["cache writes alone above the prompt", { promptTokens: 5, cacheWriteTokens: 6 }],
    ["reasoning above the completion", { completionTokens: 10, reasoningTokens: 11 }],
    ["negative cache reads", { cachedTokens: -1 }],
  ])("refuses a row with %s", async (what, t) => {
    const written = recordUsage(stack.db, row(`req_bad_${what}`, t));
    await expect(written).rejects.toThrow(/usage_events_taxonomy_check/);
  });

  it("accepts reads and writes that exactly fill the prompt", async () => {
    const t = { promptTokens: 100, cachedTokens: 60, cacheWriteTokens: 40, reasoningTokens: 10 };
    expect((await recordUsage(stack.db, row("req_full", t))).inserted).toBe(true);
    const stored = await stack.db("usage_events").where({ request_id: "req_full" }).first();
    expect(stored).toMatchObject({ prompt_tokens: 100, cached_tokens: 60, cache_write_tokens: 40 });
  });
});

describe("pricing by token kind", () => {
  it("prices cache reads and writes at their own rates and the rest of the prompt at the input rate", () => {
    const price = priceFor("claude-sonnet-4-5")!;
    expect(price).toMatchObject({
      inputPerM: 3_000_000,
      cachedInputPerM: 300_000,
      cacheWritePerM: 3_750_000,
    });
    const usage = tokens({ promptTokens: 10_000, cachedTokens: 6_000, cacheWriteTokens: 2_000 });
    // 2,000 plain × $3 + 6,000 read × $0.30 + 2,000 written × $3.75 + 10 out × $15, per 1M.
    expect(providerCostMicros({ ...usage, completionTokens: 1_000 }, price)).toBe(
      6_000 + 1_800 + 7_500 + 15_000,
    );
    // The same prompt all plain costs more than read from cache and less than written to it.
    const plain = providerCostMicros(tokens({ promptTokens: 10_000 }), price);
    const read = providerCostMicros(tokens({ promptTokens: 10_000, cachedTokens: 10_000 }), price);
    const written = providerCostMicros(tokens({ promptTokens: 10_000, cacheWriteTokens: 10_000 }), price);
    expect(read).toBeLessThan(plain);
    expect(written).toBeGreaterThan(plain);
  });

  it("prices a prompt above the long-context threshold wholly at the long-context rates", () => {
    const price = priceFor("claude-sonnet-4-5")!;
    expect(providerCostMicros(tokens({ promptTokens: 200_000, completionTokens: 0 }), price)).toBe(600_000);
    expect(providerCostMicros(tokens({ promptTokens: 300_000, completionTokens: 1_000 }), price)).toBe(
      1_800_000 + 22_500,
    );
  });

  it("prices reasoning at its own rate where a price sets one, else as output", () => {
    const base: ModelPrice = {
      model: "m",
      effectiveFrom: "2026-01-01",
      inputPerM: 0,
      cachedInputPerM: 0,
      outputPerM: 1_000_000,
    };
    const usage = tokens({ promptTokens: 0, completionTokens: 100, reasoningTokens: 40 });
    expect(providerCostMicros(usage, base)).toBe(100);
    expect(providerCostMicros(usage, { ...base, reasoningPerM: 3_000_000 })).toBe(60 + 120);
  });
});

describe("the OpenAI mapping (usageFromProvider)", () => {
  it("maps OpenAI's usage into one row: cached and reasoning are subsets, no cache writes", async () => {
    const usage: OpenAI.CompletionUsage = {
      prompt_tokens: 1_200,
      completion_tokens: 300,
      total_tokens: 1_500,
      prompt_tokens_details: { cached_tokens: 1_024 },
      completion_tokens_details: { reasoning_tokens: 128 },
    };
    const mapped = usageFromProvider(usage);
    expect(mapped).toEqual({
      promptTokens: 1_200,
      cachedTokens: 1_024,
      cacheWriteTokens: 0,
      completionTokens: 300,
      reasoningTokens: 128,
    });
    await recordUsage(stack.db, { ...row("req_openai", mapped), model: "gpt-4o-mini" });
    expect(await stack.db("usage_events").where({ request_id: "req_openai" }).first()).toMatchObject({
      prompt_tokens: 1_200,
      cached_tokens: 1_024,
      cache_write_tokens: 0,
      completion_tokens: 300,
      reasoning_tokens: 128,
    });
  });

  it("reads the adapters' cache_write_tokens, clamped so reads and writes never exceed the prompt", () => {
    const details = (cached: number, written: number) =>
      ({ cached_tokens: cached, cache_write_tokens: written }) as OpenAI.CompletionUsage.PromptTokensDetails;
    const usage = (cached: number, written: number): OpenAI.CompletionUsage => ({
      prompt_tokens: 100,
      completion_tokens: 1,
      total_tokens: 101,
      prompt_tokens_details: details(cached, written),
    });
    expect(usageFromProvider(usage(30, 50))).toMatchObject({ cachedTokens: 30, cacheWriteTokens: 50 });
    expect(usageFromProvider(usage(80, 50))).toMatchObject({ cachedTokens: 80, cacheWriteTokens: 20 });
    expect(usageFromProvider(usage(0, -5))).toMatchObject({ cacheWriteTokens: 0 });
  });
});

describe("ingested usage with cache writes", () => {
  const post = (path: string, body?: unknown) =>
    fetch(`${stack.url}${path}`, {
      method: body === undefined ? "GET" : "POST",
      headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });

  it("records cache_write_tokens, prices them at the cache-write rate, and totals them in GET /v1/usage", async () => {
    const event = {
      id: "cw-1",
      model: "claude-haiku-4-5-20251001",
      prompt_tokens: 10_000,
      cached_tokens: 2_000,
      cache_write_tokens: 4_000,
      completion_tokens: 1_000,
    };
    const bad = { ...event, id: "cw-2", cache_write_tokens: 8_001 };
    const res = await post("/v1/usage", { events: [event, bad] });
    expect(res.status).toBe(202);
    const body = (await res.json()) as { accepted: number; errors: Array<{ param: string; code: string }> };
    expect(body.accepted).toBe(1);
    expect(body.errors).toMatchObject([{ param: "events[1].cache_write_tokens", code: "invalid_value" }]);

    const stored = await waitFor(() =>
      stack.db("usage_events").where({ customer_id: customerId, source: "ingested" }).first(),
    );
    // Haiku 4.5 per 1M: $1 input, $0.10 read, $1.25 write, $5 output.
    expect(stored).toMatchObject({
      cache_write_tokens: 4_000,
      cached_tokens: 2_000,
      price_model: "claude-haiku-4-5",
      provider_cost_micros: 4_000 + 200 + 5_000 + 5_000,
    });
    const usage = (await (await post("/v1/usage")).json()) as {
      tokens: { cache_write_tokens: number };
      by_model: Array<{ model: string; cache_write_tokens: number }>;
    };
    expect(usage.tokens.cache_write_tokens).toBe(4_000 + 40);
    expect(usage.by_model.find((m) => m.model === "claude-haiku-4-5-20251001")?.cache_write_tokens).toBe(
      4_000,
    );
  });
});
