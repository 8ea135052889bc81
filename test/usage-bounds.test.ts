import { describe, expect, it } from "vitest";
import { validateUsageEvents } from "../src/api/usage-events.js";
import { MAX_MICROS_PER_EVENT, MAX_TOKENS_PER_EVENT } from "../src/billing/ledger/usage-bounds.js";
import { useStack, waitFor } from "./helpers/stack.js";

const stack = useStack();

type IngestBody = {
  accepted?: number;
  error?: { code: string };
  errors: Array<{ index: number; id: string | null; param: string | null; code: string }>;
};

async function ingest(key: string, events: unknown[]) {
  const res = await fetch(`${stack.url}/v1/usage`, {
    method: "POST",
    headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
    body: JSON.stringify({ events }),
  });
  return { status: res.status, body: (await res.json()) as IngestBody };
}

const event = (id: string, promptTokens: number, completionTokens: number, model = "gpt-4o-mini") => ({
  id,
  model,
  prompt_tokens: promptTokens,
  completion_tokens: completionTokens,
});

describe("bounds on ingested usage", () => {
  it("refuses 600 events of 9e15 tokens by index and stores none of them", async () => {
    const { customerId, key } = await stack.customer();
    const huge = Array.from({ length: 600 }, (_, i) => event(`huge-${i}`, 9e15, 9e15));
    const res = await ingest(key, huge);
    expect(res.status).toBe(400);
    expect(res.body.error?.code).toBe("invalid_events");
    expect(res.body.errors).toHaveLength(600);
    expect(res.body.errors[599]).toMatchObject({
      index: 599,
      id: "huge-599",
      code: "tokens_out_of_range",
      param: "events[599].prompt_tokens",
    });
    expect(new Set(res.body.errors.map((e) => e.code))).toEqual(new Set(["tokens_out_of_range"]));

    // A later batch on the same FIFO queue lands alone: the refused one left nothing behind.
    expect((await ingest(key, [event("small", 10, 5)])).status).toBe(202);
    const rows = () => stack.db("usage_events").where({ customer_id: customerId });
    await waitFor(async () => (await rows()).length > 0, { what: "the small event's row" });
    expect((await rows()).map((r) => r.billable_tokens)).toEqual([15]);
  });

  it("accepts counts up to the maximum and refuses one token more, per field", () => {
    const { valid, errors } = validateUsageEvents(
      [
        event("max", MAX_TOKENS_PER_EVENT, MAX_TOKENS_PER_EVENT),
        event("prompt", MAX_TOKENS_PER_EVENT + 1, 1),
        event("completion", 1, MAX_TOKENS_PER_EVENT + 1),
      ],
      { defaultPrice: undefined },
    );
    expect(valid.map((e) => e.id)).toEqual(["max"]);
    expect(errors.map((e) => [e.index, e.code, e.param])).toEqual([
      [1, "tokens_out_of_range", "events[1].prompt_tokens"],
      [2, "tokens_out_of_range", "events[2].completion_tokens"],
    ]);
  });

  it("refuses an event whose provider cost or list price exceeds the per-event maximum", () => {
    // gpt-4o output is $10 per 1M tokens: 10^9 tokens cost $10,000, above the $5,000 bound.
    const costly = event("costly", 1, MAX_TOKENS_PER_EVENT, "gpt-4o");
    // At $5 per 1K tokens, 10^9 + 1 tokens list at just over $5,000,000.
    const plan = { overagePer1kMicros: 5_000_000 };
    const { valid, errors } = validateUsageEvents(
      [costly, event("listed", MAX_TOKENS_PER_EVENT, 1), event("cheap", 100_000, 1_000)],
      { defaultPrice: undefined, plan },
    );
    expect(MAX_MICROS_PER_EVENT).toBe(5_000_000_000);
    expect(valid.map((e) => e.id)).toEqual(["cheap"]);
    expect(errors.map((e) => [e.index, e.code])).toEqual([
      [0, "cost_out_of_range"],
      [1, "cost_out_of_range"],
    ]);
  });
});
