import { describe, expect, it } from "vitest";
import { periodCharge } from "../src/billing/pricing/period-charge.js";
import { DEFAULT_PLANS, type Plan } from "../src/billing/pricing/plans.js";
import { priceFor, providerCostMicros } from "../src/billing/pricing/prices.js";
import { cleanUp, quotePrice } from "../src/billing/pricing/pricing-quote.js";
import { formatMicros, parseHundredths } from "../src/billing/pricing/money.js";
import { usageBatchJobId, usageEventRequestId } from "../src/platform/ids.js";

const pro = DEFAULT_PLANS.find((p) => p.id === "pro")!;

describe("provider cost", () => {
  it("prices cached input and reasoning inside their parents, rounded half up once", () => {
    // gpt-4o-mini per 1M: $0.15 in, $0.075 cached, $0.60 out.
    // 500 uncached × 0.15 + 1,000 cached × 0.075 + 101 out × 0.6 = 75 + 75 + 60.6 = 210.6 → 211.
    const usage = {
      promptTokens: 1_500,
      cachedTokens: 1_000,
      cacheWriteTokens: 0,
      completionTokens: 101,
      reasoningTokens: 80,
    };
    expect(providerCostMicros(usage, priceFor("gpt-4o-mini")!)).toBe(211);
    // Reasoning tokens are already inside completion tokens: they add nothing on their own.
    expect(providerCostMicros({ ...usage, reasoningTokens: 0 }, priceFor("gpt-4o-mini")!)).toBe(211);
    // Exactly half a micro rounds up: 5 uncached gpt-4o-mini tokens = 0.75 → 1; 3 = 0.45 → 0.
    const five = {
      promptTokens: 5,
      cachedTokens: 0,
      cacheWriteTokens: 0,
      completionTokens: 0,
      reasoningTokens: 0,
    };
    expect(providerCostMicros(five, priceFor("gpt-4o-mini")!)).toBe(1);
    expect(providerCostMicros({ ...five, promptTokens: 3 }, priceFor("gpt-4o-mini")!)).toBe(0);
  });
});

describe("price effective dates", () => {
  it("takes the price in effect on the request's UTC day, on either side of a change", () => {
    const table = [
      { model: "m", effectiveFrom: "2026-01-01", inputPerM: 1, cachedInputPerM: 1, outputPerM: 1 },
      { model: "m", effectiveFrom: "2026-06-01", inputPerM: 2, cachedInputPerM: 2, outputPerM: 2 },
    ];
    const at = (iso: string) => priceFor("m", new Date(iso), table)?.inputPerM;
    expect(at("2026-05-31T23:59:59.999Z")).toBe(1);
    expect(at("2026-06-01T00:00:00.000Z")).toBe(2);
    expect(at("2026-05-31T12:00:00.000Z")).toBe(1);
    expect(at("2025-12-31T23:59:59.999Z")).toBeUndefined();
    expect(at("2027-01-01T00:00:00.000Z")).toBe(2);
  });
});

describe("the allowance boundary and per-1K overage", () => {
  it("includes exactly the allowance, then prices each token at the per-1K rate, rounded half up on the total", () => {
    expect(periodCharge(pro, 2_000_000)).toMatchObject({
      overageTokens: 0,
      overageMicros: 0,
      totalMicros: 20_000_000,
    });
    // One token past: 1.5 micros → 2 (half up), not a whole 1K block (1,500).
    expect(periodCharge(pro, 2_000_001)).toMatchObject({
      includedUsedTokens: 2_000_000,
      includedRemainingTokens: 0,
      overageTokens: 1,
      overageMicros: 2,
    });
    expect(periodCharge(pro, 2_000_333).overageMicros).toBe(500); // 499.5 → 500
    expect(periodCharge(pro, 2_000_332).overageMicros).toBe(498); // 498.0
    expect(periodCharge(pro, 1_999_999)).toMatchObject({ includedRemainingTokens: 1, overageMicros: 0 });
  });

  it("rounds once per period, so many small requests cost what their total costs", () => {
    const plan: Plan = { ...pro, includedTokens: 0 };
    // 1,000 requests of 1 token: per-request rounding would charge 1,000 × 2 = 2,000; the policy charges 1,500.
    expect(periodCharge(plan, 1_000).overageMicros).toBe(1_500);
  });
});

describe("pricing:quote", () => {
  it("blends cost per 1K for the traffic mix, applies the margin and rounds up to a clean price", () => {
    const quote = quotePrice({
      price: priceFor("gpt-4o-mini")!,
      marginHundredths: 400,
      inputSharePct: 75,
      cachedSharePct: 0,
    });
    // 0.75 × 150,000 + 0.25 × 600,000 = 262,500 µ$ per 1M; × 4 = 1,050,000 → 1,050 per 1K → 1,100.
    expect(quote).toMatchObject({ blendedCostPer1M: 262_500, pricePer1M: 1_050_000, cleanPricePer1k: 1_100 });
    expect(quote.steps.join("\n")).toMatch(/262\.500 µ\$/);
  });

  it("prices the cache reads and writes of the mix at their rates (claude-sonnet-4-5)", () => {
    const quote = quotePrice({
      price: priceFor("claude-sonnet-4-5")!,
      marginHundredths: 400,
      inputSharePct: 75,
      cachedSharePct: 40,
      cacheWriteSharePct: 20,
    });
    // 0.75 × (0.4 × 3,000,000 + 0.4 × 300,000 + 0.2 × 3,750,000) + 0.25 × 15,000,000 = 5,302,500.
    expect(quote.blendedCostPer1M).toBe(5_302_500);
    expect(quote.steps[0]).toMatch(/cache read 300000 µ\$, cache write 3750000 µ\$/);
  });

  it("never rounds a clean price down", () => {
    expect([cleanUp(7), cleanUp(10), cleanUp(787), cleanUp(1_000), cleanUp(1_001), cleanUp(14_657)]).toEqual([
      7, 10, 790, 1_000, 1_100, 15_000,
    ]);
  });

  it("parses margins and formats money without floats", () => {
    expect([
      parseHundredths("4"),
      parseHundredths("3.5"),
      parseHundredths("2.25"),
      parseHundredths("x"),
    ]).toEqual([400, 350, 225, undefined]);
    expect([formatMicros(186_750, 2), formatMicros(55_000_000, 2), formatMicros(4_999, 2)]).toEqual([
      "$0.19",
      "$55.00",
      "$0.00",
    ]);
  });
});

describe("ingested event keys", () => {
  it("derive one row key per (customer, event id), valid as a BullMQ job id", () => {
    const a = usageEventRequestId("cust_a", "evt-1");
    expect(usageEventRequestId("cust_a", "evt-1")).toBe(a);
    expect(usageEventRequestId("cust_b", "evt-1")).not.toBe(a);
    expect(usageEventRequestId("cust_a", "evt-2")).not.toBe(a);
    const batch = usageBatchJobId("cust_a", [a]);
    for (const id of [a, batch]) {
      expect(id).not.toContain(":");
      expect(id).not.toMatch(/^\d+$/);
    }
  });
});
