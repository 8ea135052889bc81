import { beforeAll, describe, expect, it } from "vitest";
import { useStack } from "./helpers/stack.js";
import { recordUsageRows, type UsageRow } from "../src/billing/ledger/ledger.js";
import { usageSummary } from "../src/billing/ledger/usage-summary.js";
import { usageGroups } from "../src/billing/ledger/usage-groups.js";
import { recordedTokens } from "../src/billing/ledger/quota.js";
import { profitability } from "../src/billing/pricing/profitability.js";
import { splitHours } from "../src/billing/ledger/usage-totals.js";
import { listPlans } from "../src/billing/pricing/plans.js";
import type { Period } from "../src/billing/ledger/periods.js";
import * as hourlyTokens from "../migrations/20261202003100_usage_hourly_tokens.js";

const stack = useStack({ worker: false });
const customers: string[] = [];

// Rows every 7 minutes 13 seconds over three days, spread over two customers, three models and
// two end users, with token counts that differ row to row: any hour or edge summed twice or missed
// changes a total.
const START = Date.UTC(2026, 10, 3, 0, 0, 0);
const STEP = 7 * 60_000 + 13_000;

beforeAll(async () => {
  for (let i = 0; i < 2; i++) customers.push((await stack.customer()).customerId);
  const rows: UsageRow[] = Array.from({ length: 600 }, (_, i) => {
    const prompt = 100 + ((i * 37) % 500);
    const completion = 10 + ((i * 11) % 90);
    return {
      requestId: `req_totals_${i}`,
      customerId: customers[i % 2]!,
      model: ["gpt-4o-mini", "gpt-4o", "o4-mini"][i % 3]!,
      promptTokens: prompt,
      cachedTokens: i % 5,
      cacheWriteTokens: i % 7,
      completionTokens: completion,
      reasoningTokens: i % 4,
      billableTokens: prompt + completion,
      providerCostMicros: 3 + (i % 13),
      priceMicros: 30 + i,
      source: "provider",
      planId: "usage",
      pricing: { includedTokens: 20_000, overagePer1kMicros: 2_000 },
      ...(i % 4 === 0 ? { endUser: `user_${i % 8}` } : {}),
      createdAt: new Date(START + i * STEP),
    };
  });
  for (let i = 0; i < rows.length; i += 100) await recordUsageRows(stack.db, rows.slice(i, i + 100));
});

const at = (ms: number) => new Date(START + ms);
const H = 3_600_000;
const PERIODS: Array<[string, Period]> = [
  ["whole hours", { start: at(2 * H), end: at(40 * H), source: "calendar_month" }],
  [
    "starting and ending mid-hour",
    { start: at(5 * H + 17 * 60_000 + 3_000), end: at(50 * H + 1_234), source: "subscription" },
  ],
  ["inside one hour", { start: at(7 * H + 60_000), end: at(7 * H + 40 * 60_000), source: "subscription" }],
  ["of everything", { start: at(-H), end: at(100 * H), source: "calendar_month" }],
  ["empty", { start: at(3 * H + 5), end: at(3 * H + 5), source: "subscription" }],
];

/** The same totals summed over the ledger's rows: what the rollup reads must equal. */
async function rawTotals(period: Period, customerId: string, groupBy: string) {
  const { rows } = await stack.db.raw<{ rows: Array<Record<string, string>> }>(
    `SELECT ${groupBy} COLLATE "C" AS key, count(*)::text AS requests, sum(prompt_tokens)::text AS prompt,
            sum(cached_tokens)::text AS cached, sum(cache_write_tokens)::text AS cache_write,
            sum(completion_tokens)::text AS completion, sum(reasoning_tokens)::text AS reasoning,
            sum(billable_tokens)::text AS billable, sum(charge_micros)::text AS charge,
            sum(credit_tokens)::text AS credit, sum(provider_cost_micros)::text AS cost
     FROM usage_events WHERE customer_id = ? AND created_at >= ? AND created_at < ?
     GROUP BY 1 ORDER BY 1`,
    [customerId, period.start, period.end],
  );
  return rows.map((r) => ({
    key: r.key!,
    requests: Number(r.requests),
    promptTokens: Number(r.prompt),
    cachedTokens: Number(r.cached),
    cacheWriteTokens: Number(r.cache_write),
    completionTokens: Number(r.completion),
    reasoningTokens: Number(r.reasoning),
    billableTokens: Number(r.billable),
    chargeMicros: Number(r.charge),
    providerCostMicros: Number(r.cost),
  }));
}

describe("usage totals from the hourly rollup", () => {
  it("cuts a period into whole hours and its partial edge hours", () => {
    expect(splitHours({ start: at(5 * H + 1), end: at(8 * H - 1) })).toEqual({
      whole: { start: at(6 * H), end: at(7 * H) },
      edges: [
        { start: at(5 * H + 1), end: at(6 * H) },
        { start: at(7 * H), end: at(8 * H - 1) },
      ],
    });
    expect(splitHours({ start: at(5 * H), end: at(7 * H) })).toEqual({
      whole: { start: at(5 * H), end: at(7 * H) },
      edges: [],
    });
    expect(splitHours({ start: at(5 * H + 1), end: at(7 * H - 1) })).toEqual({
      whole: null,
      edges: [{ start: at(5 * H + 1), end: at(7 * H - 1) }],
    });
  });

  it.each(PERIODS)("equal the ledger's raw sums for a period %s", async (_, period) => {
    const plan = (await listPlans(stack.db)).find((p) => p.id === "usage")!;
    const report = await profitability(stack.db, period, 300);
    for (const customerId of customers) {
      const byModel = await rawTotals(period, customerId, "model");
      const summary = await usageSummary(stack.db, customerId, plan, period);
      expect(summary.byModel).toEqual(
        byModel.map(({ key, chargeMicros: _c, providerCostMicros: _p, ...t }) => ({ model: key, ...t })),
      );
      const sum = (k: "billableTokens" | "chargeMicros" | "providerCostMicros" | "requests") =>
        byModel.reduce((n, r) => n + r[k], 0);
      expect(summary.totals.billableTokens).toBe(sum("billableTokens"));
      expect(summary.credits.chargedMicros).toBe(sum("chargeMicros"));
      expect(summary.providerCostMicros).toBe(sum("providerCostMicros"));
      expect(await recordedTokens(stack.db, customerId, period)).toBe(sum("billableTokens"));
      expect(report.find((r) => r.customerId === customerId)).toEqual(
        sum("requests") === 0
          ? undefined
          : expect.objectContaining({
              requests: sum("requests"),
              billableTokens: sum("billableTokens"),
              providerCostMicros: sum("providerCostMicros"),
            }),
      );

      for (const [groupBy, sql] of [
        ["model", "model"],
        ["day", "to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD')"],
        ["end_user", "coalesce(end_user, '')"],
      ] as const) {
        const raw = await rawTotals(period, customerId, sql);
        const page = await usageGroups(stack.db, customerId, period, { groupBy, limit: 1000 });
        expect(page.groups).toEqual(
          raw.map(({ key, providerCostMicros: _p, ...t }) => ({ key: key === "" ? null : key, ...t })),
        );
      }
    }
  });

  it("the migration fills the token columns of hours written before it", async () => {
    const before = await stack.db("usage_hourly").orderBy(["customer_id", "hour", "model"]);
    expect(before.some((h: { prompt_tokens: number }) => h.prompt_tokens > 0)).toBe(true);
    await hourlyTokens.down(stack.db);
    await hourlyTokens.up(stack.db);
    expect(await stack.db("usage_hourly").orderBy(["customer_id", "hour", "model"])).toEqual(before);
  });
});
