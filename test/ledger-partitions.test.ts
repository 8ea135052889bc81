import { randomBytes } from "node:crypto";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createDb, type Db } from "../src/platform/db.js";
import { migrationSource } from "../migrations/index.js";
import { seedDefaultPlans } from "../src/billing/pricing/plans.js";
import { ensurePartitions } from "../src/billing/ledger/partitions.js";
import { recordUsage, type UsageRow } from "../src/billing/ledger/ledger.js";
import { usageRow } from "./helpers/usage-row.js";

const ADMIN_URL = "postgres://postgres@127.0.0.1:5432/postgres";
const name = `meterline_test_${randomBytes(6).toString("hex")}`;
let db: Db;

const monthAfter = (at: Date, months: number) =>
  new Date(Date.UTC(at.getUTCFullYear(), at.getUTCMonth() + months, 1));
const partitionOf = (at: Date) => `usage_events_${at.toISOString().slice(0, 7).replace("-", "")}`;
const now = new Date();
// Rows written before the conversion: one a day for 120 days up to now, in the plain table.
const OLD_ROWS = 120;

const row = (requestId: string, createdAt?: Date): UsageRow =>
  usageRow(requestId, "cus_part", createdAt ? { createdAt } : {});

async function rowsWhere(requestId: string) {
  const { rows } = await db.raw<{ rows: Array<{ part: string }> }>(
    "SELECT tableoid::regclass::text AS part FROM usage_events WHERE request_id = ?",
    [requestId],
  );
  return rows.map((r) => r.part);
}

beforeAll(async () => {
  const admin = new pg.Client({ connectionString: ADMIN_URL });
  await admin.connect();
  await admin.query(`CREATE DATABASE "${name}"`);
  await admin.end();
  db = createDb(`postgres://postgres@127.0.0.1:5432/${name}`, { max: 5 });
  // The schema as it stood before the ledger was partitioned, holding rows.
  const before = {
    ...migrationSource,
    getMigrations: async () =>
      (await migrationSource.getMigrations([])).filter((m) => m <= "20261202003100_usage_hourly_tokens"),
  };
  await db.migrate.latest({ migrationSource: before });
  await seedDefaultPlans(db);
  await db("customers").insert({ id: "cus_part", name: "Partitioned", plan_id: "usage" });
  await db.raw(
    `INSERT INTO usage_events (request_id, customer_id, model, prompt_tokens, completion_tokens, billable_tokens,
                               provider_cost_micros, price_micros, source, plan_id, created_at)
     SELECT 'req_old_' || g, 'cus_part', 'gpt-4o-mini', 10, 5, 15, 3, 30, 'provider', 'usage', ?::timestamptz - g * interval '1 day'
     FROM generate_series(0, ? - 1) g`,
    [now, OLD_ROWS],
  );
  await db.migrate.latest({ migrationSource });
});

afterAll(async () => {
  await db?.destroy();
  const admin = new pg.Client({ connectionString: ADMIN_URL });
  await admin.connect();
  await admin.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
  await admin.end();
});

describe("the partitioned ledger", () => {
  it("converts a table holding rows in place: every row kept, in the legacy partition, claimed once", async () => {
    const { rows } = await db.raw<{ rows: Array<{ part: string; n: number; first: Date; last: Date }> }>(
      `SELECT tableoid::regclass::text AS part, count(*)::int AS n FROM usage_events GROUP BY 1`,
    );
    expect(rows).toEqual([{ part: "usage_events_legacy", n: OLD_ROWS }]);
    const { rows: parent } = await db.raw<{ rows: Array<{ relkind: string }> }>(
      "SELECT relkind FROM pg_class WHERE relname = 'usage_events'",
    );
    expect(parent[0]!.relkind).toBe("p");
    expect(await db("usage_requests").count({ n: "*" })).toEqual([{ n: OLD_ROWS }]);
    // An old request repeated after the conversion writes nothing.
    expect((await recordUsage(db, row("req_old_7"))).inserted).toBe(false);
    expect(await rowsWhere("req_old_7")).toEqual(["usage_events_legacy"]);
  });

  it("makes months ahead idempotently, and a new month's rows land in its partition", async () => {
    // The migration made the months from the legacy bound to three months ahead.
    expect(await ensurePartitions(db, { now })).toEqual([]);
    const later = monthAfter(now, 2);
    expect(await ensurePartitions(db, { now: later })).toEqual([
      partitionOf(monthAfter(later, 2)),
      partitionOf(monthAfter(later, 3)),
    ]);
    expect(await ensurePartitions(db, { now: later })).toEqual([]);
    const at = new Date(monthAfter(now, 1).getTime() + 3_600_000);
    expect((await recordUsage(db, row("req_next_month", at))).inserted).toBe(true);
    expect(await rowsWhere("req_next_month")).toEqual([partitionOf(at)]);
  });

  it("puts a row far in the future in the DEFAULT partition, and moves it when its month is made", async () => {
    const far = new Date(Date.UTC(2100, 0, 15));
    expect((await recordUsage(db, row("req_far", far))).inserted).toBe(true);
    expect(await rowsWhere("req_far")).toEqual(["usage_events_default"]);
    expect(await ensurePartitions(db, { now: far, from: far })).toContain("usage_events_210001");
    expect(await rowsWhere("req_far")).toEqual(["usage_events_210001"]);
  });

  it("writes one row for a request however often and however concurrently it is recorded", async () => {
    const at = new Date(monthAfter(now, 1).getTime() + 7_200_000);
    const results = await Promise.all(Array.from({ length: 10 }, () => recordUsage(db, row("req_dup", at))));
    expect(results.filter((r) => r.inserted)).toHaveLength(1);
    expect((await recordUsage(db, row("req_dup"))).inserted).toBe(false);
    expect(await rowsWhere("req_dup")).toEqual([partitionOf(at)]);
    expect(await db("usage_requests").where({ request_id: "req_dup" })).toHaveLength(1);
  });
});
