import { beforeAll, describe, expect, it } from "vitest";
import { ask, useStack, waitFor, type Stack } from "./helpers/stack.js";
import { validateUsageEvents } from "../src/api/usage-events.js";
import { MODEL_PRICES, priceFor, providerCostMicros, resolvePrice } from "../src/billing/pricing/prices.js";

const VARIANTS = ["gpt-4o-audio-preview", "gpt-4o-search-preview", "o4-mini-deep-research"];
const DEFAULT = { inputPerM: 1_000_000, cachedInputPerM: 500_000, outputPerM: 3_000_000 };

const strict = useStack();
const lenient = useStack({ env: { DEFAULT_MODEL_PRICE: "1000000,500000,3000000" } });
let strictKey: string;
let lenientCustomer: { customerId: string; key: string };

beforeAll(async () => {
  strictKey = (await strict.customer()).key;
  lenientCustomer = await lenient.customer();
});

const chat = (stack: Stack, key: string, model: string) => stack.chat(key, ask("price me", { model }));

const rowOf = (requestId: string) =>
  waitFor(() => lenient.db("usage_events").where({ request_id: requestId }).first());

describe("model names", () => {
  it("match the price table exactly or through an explicit alias, never by prefix", () => {
    for (const model of VARIANTS) {
      expect(priceFor(model)).toBeUndefined();
      expect(resolvePrice(model, undefined)).toBeUndefined();
      expect(resolvePrice(model, DEFAULT)).toMatchObject({ model: "default", ...DEFAULT });
    }
    expect(priceFor("gpt-4o-2024-08-06")).toBe(MODEL_PRICES.find((p) => p.model === "gpt-4o"));
    expect(priceFor("gpt-4o-mini-2024-07-18")?.model).toBe("gpt-4o-mini");
    expect(priceFor("o4-mini-2025-04-16")?.model).toBe("o4-mini");
    // An older snapshot billed at another price is not an alias.
    expect(priceFor("gpt-4o-2024-05-13")).toBeUndefined();
    for (const model of ["gpt-4o-mini", "gpt-4o", "gpt-4.1-mini", "gpt-4.1", "o4-mini"])
      expect(resolvePrice(model, DEFAULT)?.model).toBe(model);
  });

  it.each(VARIANTS)("refuses %s with 400 model_not_found without DEFAULT_MODEL_PRICE", async (model) => {
    const res = await chat(strict, strictKey, model);
    expect(res.status).toBe(400);
    expect(res.body.error).toMatchObject({ code: "model_not_found", param: "model" });
    const events = [{ id: "e", model, prompt_tokens: 1, completion_tokens: 1 }];
    expect(validateUsageEvents(events, { defaultPrice: undefined }).errors).toMatchObject([
      { index: 0, code: "model_not_found" },
    ]);
  });

  it.each(VARIANTS)("bills %s at DEFAULT_MODEL_PRICE when configured, and the row says so", async (model) => {
    const res = await chat(lenient, lenientCustomer.key, model);
    expect(res.status).toBe(200);
    const row = await rowOf(res.requestId!);
    expect(row).toMatchObject({ model, price_model: "default" });
    const tokens = {
      promptTokens: row.prompt_tokens,
      cachedTokens: row.cached_tokens,
      cacheWriteTokens: row.cache_write_tokens,
      completionTokens: row.completion_tokens,
      reasoningTokens: row.reasoning_tokens,
    };
    expect(row.provider_cost_micros).toBe(
      providerCostMicros(tokens, { model: "default", effectiveFrom: "1970-01-01", ...DEFAULT }),
    );
  });

  it("bills an explicit alias at its base model's price, and the row names the base", async () => {
    const res = await chat(lenient, lenientCustomer.key, "gpt-4o-2024-08-06");
    expect(res.status).toBe(200);
    const row = await rowOf(res.requestId!);
    expect(row).toMatchObject({ model: "gpt-4o-2024-08-06", price_model: "gpt-4o" });
    const tokens = {
      promptTokens: row.prompt_tokens,
      cachedTokens: row.cached_tokens,
      cacheWriteTokens: row.cache_write_tokens,
      completionTokens: row.completion_tokens,
      reasoningTokens: row.reasoning_tokens,
    };
    expect(row.provider_cost_micros).toBe(providerCostMicros(tokens, priceFor("gpt-4o")!));
    expect(row.provider_cost_micros).toBeGreaterThan(0);
  });

  it("marks ingested rows with the price applied", async () => {
    const res = await fetch(`${lenient.url}/v1/usage`, {
      method: "POST",
      headers: { authorization: `Bearer ${lenientCustomer.key}`, "content-type": "application/json" },
      body: JSON.stringify({
        events: [
          { id: "ing-variant", model: "gpt-4o-search-preview", prompt_tokens: 1000, completion_tokens: 1000 },
          { id: "ing-alias", model: "o4-mini-2025-04-16", prompt_tokens: 1000, completion_tokens: 1000 },
        ],
      }),
    });
    expect(res.status).toBe(202);
    const rows = await waitFor(async () => {
      const found = await lenient
        .db("usage_events")
        .where({ customer_id: lenientCustomer.customerId, source: "ingested" })
        .orderBy("model");
      return found.length === 2 ? found : undefined;
    });
    expect(rows.map((r) => [r.model, r.price_model, Number(r.provider_cost_micros)])).toEqual([
      ["gpt-4o-search-preview", "default", 4_000],
      ["o4-mini-2025-04-16", "o4-mini", 5_500],
    ]);
  });
});
