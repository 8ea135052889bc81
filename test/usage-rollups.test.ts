import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createCustomer } from "../src/billing/customers/customers.js";
import { usageOverTime } from "../src/billing/ledger/hourly-usage.js";
import { recordUsage, type UsageRow } from "../src/billing/ledger/ledger.js";
import type { Db } from "../src/platform/db.js";
import * as usageDailyMigration from "../migrations/20261202003160_usage_daily.js";
import { createTestDatabase } from "./helpers/db.js";

// usage_hourly and usage_daily are kept in each usage row's own transaction: whatever the writes,
// both must equal the ledger summed per bucket.
let database: Awaited<ReturnType<typeof createTestDatabase>>;
let db: Db;
let customers: string[];

beforeAll(async () => {
  database = await createTestDatabase();
  db = database.db;
  customers = await Promise.all(
    ["Rollup A", "Rollup B"].map(async (name) => (await createCustomer(db, { name })).id),
  );
});
afterAll(async () => {
  await database.drop();
});

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
/** A UTC midnight a few days back, so rows land on several days and hours around midnights. */
const midnight = new Date(Math.floor(Date.now() / DAY) * DAY - 3 * DAY);

const row = (i: number): UsageRow => ({
  requestId: `req_rollup_${i}`,
  customerId: customers[i % 2]!,
  model: i % 3 === 0 ? "gpt-4o" : "gpt-4o-mini",
  promptTokens: 10 + i,
  cachedTokens: 0,
  cacheWriteTokens: 0,
  completionTokens: 5,
  reasoningTokens: 0,
  billableTokens: 15 + i,
  providerCostMicros: 3 + i,
  priceMicros: 30,
  source: "provider",
  planId: "usage",
  pricing: { includedTokens: 0, overagePer1kMicros: 2_000 },
  // Spread over 3 days, 7 hours apart, with minutes: around and across midnights.
  createdAt: new Date(midnight.getTime() + i * 7 * HOUR + (i % 60) * 60_000 - 2 * HOUR),
});

/** The ledger summed per customer, model and UTC `unit`, in the rollups' shape. */
async function ledgerBy(unit: "hour" | "day") {
  const { rows } = await db.raw<{ rows: Array<Record<string, unknown>> }>(
    `SELECT customer_id, date_trunc('${unit}', created_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS at, model,
            count(*)::bigint AS requests, sum(billable_tokens)::bigint AS billable_tokens,
            sum(provider_cost_micros)::bigint AS provider_cost_micros, sum(charge_micros)::bigint AS charge_micros
     FROM usage_events GROUP BY 1, 2, 3 ORDER BY 1, 2, 3`,
  );
  return rows;
}

const rollup = (table: "usage_hourly" | "usage_daily") =>
  db(table)
    .select(
      "customer_id",
      { at: table === "usage_daily" ? "day" : "hour" },
      "model",
      "requests",
      "billable_tokens",
      "provider_cost_micros",
      "charge_micros",
    )
    .orderBy(["customer_id", "at", "model"]);

describe("the usage rollups", () => {
  it("usage_daily and usage_hourly equal the ledger per bucket after concurrent, repeated charges", async () => {
    // Every row twice at once: the second write of a request id adds nothing to either rollup.
    const rows = Array.from({ length: 40 }, (_, i) => row(i));
    await Promise.all([...rows, ...rows].map((r) => recordUsage(db, r)));

    const daily = await ledgerBy("day");
    expect(daily.length).toBeGreaterThanOrEqual(8);
    expect(await rollup("usage_daily")).toEqual(daily);
    expect(await rollup("usage_hourly")).toEqual(await ledgerBy("hour"));
    const charged = await db("usage_events").sum({ n: "charge_micros" }).first();
    expect(Number(charged!.n)).toBeGreaterThan(0);
  });

  it("usageOverTime by day reads whole days from usage_daily and a mid-day range from the hours", async () => {
    const wholeDays = { start: midnight, end: new Date(midnight.getTime() + 3 * DAY) };
    const days = await usageOverTime(db, wholeDays, { bucket: "day", customerId: customers[0] });
    const expected = (await ledgerBy("day")).filter(
      (r) =>
        r.customer_id === customers[0] && (r.at as Date) >= wholeDays.start && (r.at as Date) < wholeDays.end,
    );
    expect(days.map((p) => [p.at.toISOString(), p.model, p.billableTokens])).toEqual(
      expected.map((r) => [(r.at as Date).toISOString(), r.model, Number(r.billable_tokens)]),
    );

    // From 05:00 on the first day: that day's earlier hours are left out, as a period cut there.
    const cut = { start: new Date(midnight.getTime() + 5 * HOUR), end: wholeDays.end };
    const [first] = await usageOverTime(db, cut, { bucket: "day", customerId: customers[0] });
    const { rows } = await db.raw<{ rows: Array<{ n: string }> }>(
      `SELECT sum(billable_tokens) AS n FROM usage_events
       WHERE customer_id = ? AND model = ? AND created_at >= ? AND created_at < ?`,
      [customers[0]!, first!.model, cut.start, new Date(midnight.getTime() + DAY)],
    );
    expect(first!.at.toISOString()).toBe(midnight.toISOString());
    expect(first!.billableTokens).toBe(Number(rows[0]!.n));
  });

  it("the migration backfills usage_daily from usage_hourly", async () => {
    const before = await rollup("usage_daily");
    expect(before.length).toBeGreaterThan(0);
    await usageDailyMigration.down(db);
    await usageDailyMigration.up(db);
    expect(await rollup("usage_daily")).toEqual(before);
  });
});
