import { describe, expect, it } from "vitest";
import { flushUsage } from "../src/billing/reporting/usage-flush.js";
import { retryReport } from "../src/billing/reporting/report-retry.js";
import { billingPeriod } from "../src/billing/ledger/periods.js";
import { DEFAULT_PLANS } from "../src/billing/pricing/plans.js";
import { recordedTokens } from "../src/billing/ledger/quota.js";
import { SumOutOfRangeError } from "../src/errors.js";
import { usageSummary } from "../src/billing/ledger/usage-summary.js";
import { QUEUE, reportJobId } from "../src/queues/queues.js";
import { waitFor } from "./helpers/stack.js";
import { addToHourlySql } from "../src/billing/ledger/hourly-usage.js";
import { addUsage, linkedCustomer, reportsOf, useReportingStack } from "./helpers/reporting.js";

const { stack, emu } = useReportingStack();

/** `count` rows of `tokens` each, written straight into the ledger as legacy or hand-made rows are. */
/** Rows written past the intake's checks; `rollup` adds them to the hourly rollup too, as the ledger does. */
async function insertRows(customerId: string, count: number, tokens: number, rollup = false): Promise<void> {
  await stack.db.transaction(async (trx) => {
    const { rows } = await trx.raw<{ rows: Array<{ request_id: string }> }>(
      `INSERT INTO usage_events (request_id, customer_id, model, prompt_tokens, completion_tokens,
         billable_tokens, provider_cost_micros, price_micros, source, plan_id)
       SELECT 'big_' || ? || '_' || i, ?, 'gpt-4o-mini', ?, 0, ?, 0, 0, 'provider', 'usage'
       FROM generate_series(1, ?) AS i
       RETURNING request_id`,
      [customerId, customerId, tokens, tokens, count],
    );
    if (rollup)
      await trx.raw(addToHourlySql("usage_events WHERE request_id = ANY(:ids)", "created_at"), {
        ids: rows.map((r) => r.request_id),
      });
  });
}

const sentTotal = (stripeCustomerId: string) => emu.totalFor(stripeCustomerId, "meterline_tokens");
const quarantinedRows = async (reason: string) =>
  (await stack.web.metrics.usageQuarantined.get()).values.find((v) => v.labels.reason === reason)?.value ?? 0;
const openDeadLetters = (reportIds: number[]) =>
  stack
    .db("dead_letters")
    .where({ queue: QUEUE.stripeReport })
    .whereIn(
      "job_id",
      reportIds.map((id) => reportJobId(id)),
    )
    .whereNull("resolved_at");

describe("one customer's unreportable usage is quarantined while the others keep flushing", () => {
  it("sets aside a customer whose window sums past int8, reports the other, and the next tick too", async () => {
    const a = await linkedCustomer(stack.db, emu);
    const b = await linkedCustomer(stack.db, emu);
    // 1,100 × 9e15 = 9.9e18: each row is exact, their sum is past int8's 9.22e18.
    await insertRows(a.customerId, 1_100, 9e15);
    await addUsage(stack.db, b.customerId, 3, 100);

    const result = await flushUsage(stack.web);
    expect(result.reports.map((r) => r.customerId)).toEqual([b.customerId]);
    await waitFor(async () => sentTotal(b.stripeCustomerId) === 300, { what: "B's usage at Stripe" });

    const aReports = await reportsOf(stack.db, a.customerId);
    expect(aReports.length).toBeGreaterThan(0);
    for (const r of aReports)
      expect(r).toMatchObject({ status: "failed", value: 0, quarantine_reason: "value_over_limit" });
    expect(aReports[0].last_error).toMatch(/quarantined \(value_over_limit\).*9900000000000000000/);
    expect(result.quarantined.reduce((n, q) => n + q.rows, 0)).toBe(1_100);
    expect(await quarantinedRows("value_over_limit")).toBe(1_100);
    const ids = aReports.map((r) => Number(r.id));
    expect(await openDeadLetters(ids)).toHaveLength(ids.length);
    // Quarantined rows leave the unreported set: no later flush claims them again.
    expect(
      await stack.db("usage_events").where({ customer_id: a.customerId }).whereNull("report_id"),
    ).toEqual([]);

    // The next scheduled tick, on the worker, reports B's new usage and finds nothing of A's.
    await addUsage(stack.db, b.customerId, 2, 50);
    const tick = await stack.web.queues.usageFlush.add("flush", {});
    await waitFor(async () => (await tick.getState()) === "completed", { what: "the next flush tick" });
    await waitFor(async () => sentTotal(b.stripeCustomerId) === 400, { what: "B's new usage at Stripe" });

    // Retrying a quarantined report never sends its placeholder value: it fails again, unsent.
    await retryReport(stack.db, stack.web.queues.stripeReport, ids[0]!);
    await waitFor(async () => (await stack.db("usage_reports").where({ id: ids[0] }).first()).attempts > 0, {
      what: "the retried report's attempt",
    });
    expect(await stack.db("usage_reports").where({ id: ids[0] }).first()).toMatchObject({ status: "failed" });
    expect(await openDeadLetters([ids[0]!])).toHaveLength(1);
    expect(emu.meterEvents().filter((e) => e.customer === a.stripeCustomerId)).toEqual([]);
  });

  it("quarantines a customer whose report cannot be written and still writes the others'", async () => {
    const c = await linkedCustomer(stack.db, emu);
    const d = await linkedCustomer(stack.db, emu);
    await addUsage(stack.db, c.customerId, 2, 100);
    await addUsage(stack.db, d.customerId, 2, 100);
    // A fault in C's data that only the report insert meets: the database refuses C's pending report.
    await stack.db.raw(
      `ALTER TABLE usage_reports ADD CONSTRAINT refuse_c CHECK (customer_id <> '${c.customerId}' OR status = 'failed')`,
    );
    try {
      const result = await flushUsage(stack.web);
      expect(result.reports.map((r) => r.customerId)).toEqual([d.customerId]);
      expect(result.quarantined).toMatchObject([
        { customerId: c.customerId, reason: "report_insert_failed", rows: 2, value: "200" },
      ]);
    } finally {
      await stack.db.raw("ALTER TABLE usage_reports DROP CONSTRAINT refuse_c");
    }
    await waitFor(async () => sentTotal(d.stripeCustomerId) === 200, { what: "D's usage at Stripe" });
    const [cReport] = await reportsOf(stack.db, c.customerId);
    expect(cReport).toMatchObject({ status: "failed", quarantine_reason: "report_insert_failed" });
    expect(await openDeadLetters([Number(cReport.id)])).toHaveLength(1);
    expect(await quarantinedRows("report_insert_failed")).toBe(2);
  });
});

describe("sums past 2^53 are refused for their owner, never rounded", () => {
  it("refuses one customer's summary and quota rebuild while another's still answer", async () => {
    const big = await linkedCustomer(stack.db, emu);
    const small = await linkedCustomer(stack.db, emu);
    // Two exact rows whose sum, 1.8e16, is past 2^53 - 1: as a JS number it would silently round.
    await insertRows(big.customerId, 2, 9e15, true);
    await addUsage(stack.db, small.customerId, 2, 100);
    const plan = DEFAULT_PLANS[0]!;
    const period = await billingPeriod(stack.db, big.customerId);
    await expect(usageSummary(stack.db, big.customerId, plan, period)).rejects.toThrow(SumOutOfRangeError);
    await expect(recordedTokens(stack.db, big.customerId, period)).rejects.toThrow(/billable tokens/);
    expect((await usageSummary(stack.db, small.customerId, plan, period)).totals.billableTokens).toBe(200);
    expect(await recordedTokens(stack.db, small.customerId, period)).toBe(200);
  });

  it("fails a query that reads an int8 past 2^53 - 1 instead of rounding it", async () => {
    await expect(stack.db.raw("SELECT 9007199254740993::bigint AS v")).rejects.toThrow(/not exact/);
    expect((await stack.db.raw("SELECT 9007199254740991::bigint AS v")).rows[0].v).toBe(9007199254740991);
  });
});
