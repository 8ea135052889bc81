import { describe, expect, it } from "vitest";
import { useStack } from "./helpers/stack.js";
import { seedDemoData } from "../src/billing/customers/demo-data.js";
import { calendarMonth } from "../src/billing/ledger/periods.js";
import { profitability } from "../src/billing/pricing/profitability.js";

const stack = useStack({ worker: false });

describe("the profitability report", () => {
  it("finds the unprofitable power user on seeded demo data, worst multiple first", async () => {
    const now = new Date();
    expect(await seedDemoData(stack.db, now)).toEqual({ customers: 5, rows: 3_760 });
    expect((await seedDemoData(stack.db, now)).rows).toBe(0);
    const rows = await profitability(stack.db, calendarMonth(now), 300);
    const byName = Object.fromEntries(rows.map((r) => [r.name, r]));

    // Codewright on Pro: 2,000 gpt-4o requests of 4,000 in + 2,000 cached + 1,500 out:
    // 4,000 × 2.5 + 2,000 × 1.25 + 1,500 × 10 = 27,500 µ$ each → $55.00.
    // Revenue: $20 base + (15,000,000 − 2,000,000) × 1,500 / 1,000 = $19.50 → $39.50.
    expect(byName["Codewright (power user)"]).toMatchObject({
      planId: "pro",
      billableTokens: 15_000_000,
      providerCostMicros: 55_000_000,
      revenueMicros: 39_500_000,
      flagged: true,
    });
    // Deep Research on Team: 1,000 o4-mini requests, 3,000 × 1.1 + 4,000 × 4.4 = 20,900 µ$ → $20.90;
    // revenue $50 + 7,000,000 × 1,000 / 1,000 µ$ = $57.00 → 2.73×, under 3×.
    expect(byName["Deep Research Co"]).toMatchObject({ revenueMicros: 57_000_000, flagged: true });
    expect(byName["Deep Research Co"]!.multiple).toBeCloseTo(57 / 20.9, 6);
    expect(byName["Acme Notes"]).toMatchObject({
      revenueMicros: 1_600_000,
      providerCostMicros: 210_000,
      flagged: false,
    });
    expect(byName["Hobbyist"]).toMatchObject({ revenueMicros: 0, flagged: true });
    expect(rows.map((r) => r.multiple)).toEqual([...rows.map((r) => r.multiple)].sort((a, b) => a! - b!));
    // A lower target unflags Deep Research (2.73×) but not Codewright (0.72×).
    const lenient = await profitability(stack.db, calendarMonth(now), 250);
    expect(lenient.filter((r) => r.flagged).map((r) => r.name)).toEqual([
      "Hobbyist",
      "Codewright (power user)",
    ]);
  });
});
