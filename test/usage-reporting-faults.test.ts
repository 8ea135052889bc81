import { beforeAll, describe, expect, it } from "vitest";
import { flushUsage } from "../src/billing/reporting/usage-flush.js";
import { QUEUE } from "../src/queues/queues.js";
import { useStack, waitFor } from "./helpers/stack.js";
import { addUsage, ledgerTotal, linkedCustomer } from "./helpers/reporting.js";

const stack = useStack({
  stripe: "reporting",
  env: { USAGE_FLUSH_INTERVAL_MS: "150", STRIPE_REPORT_CONCURRENCY: "8" },
});

beforeAll(async () => {
  // Three worker processes in all, each running the scheduler's flushes and 8 report jobs at once.
  await stack.startWorker();
  await stack.startWorker();
});

describe("reporting under a random mix of Stripe faults", () => {
  it("ends with Stripe's deduplicated totals equal to the ledger, every row in one sent report, one call at a time per customer", async () => {
    const emu = stack.stripe;
    const started = Date.now();
    emu.setFaults({
      rate500: 0.3,
      rate429: 0.1,
      rateDrop: 0.02,
      rateDropAfter: 0.02,
      slowMs: [0, 25],
      seed: 4242,
    });
    const customers = await Promise.all(Array.from({ length: 6 }, () => linkedCustomer(stack.db, emu)));

    // Usage keeps arriving while scheduled flushes (every 150 ms, three workers) and extra
    // on-demand flushes claim it and the reports go out through the faults.
    for (let round = 0; round < 20; round++) {
      await Promise.all(
        customers.map((c, i) => addUsage(stack.db, c.customerId, 1, 10 + ((round * 7 + i) % 50))),
      );
      // An on-demand flush from "another process" every round, alternating one customer and all.
      await flushUsage(stack.web, round % 2 ? { customerId: customers[round % 6]!.customerId } : {});
    }
    const writtenMs = Date.now() - started;
    const drained = async () => {
      const unreported = await stack.db("usage_events").whereNull("report_id").count({ n: "*" }).first();
      const open = await stack.db("usage_reports").whereNot({ status: "sent" }).count({ n: "*" }).first();
      return Number(unreported?.n) === 0 && Number(open?.n) === 0;
    };
    await waitFor(drained, { timeoutMs: 60_000, intervalMs: 100, what: "every row in a sent report" });
    const drainedMs = Date.now() - started;
    emu.clearFaults();

    for (const c of customers) {
      expect(emu.totalFor(c.stripeCustomerId, "meterline_tokens")).toBe(
        await ledgerTotal(stack.db, c.customerId),
      );
    }
    const reports = await stack.db("usage_reports").select("id", "identifier", "value", "attempts", "status");
    const rowSums: Array<{ report_id: number; total: string }> = await stack
      .db("usage_events")
      .groupBy("report_id")
      .select("report_id", stack.db.raw("sum(billable_tokens) AS total"));
    const byReport = new Map(rowSums.map((r) => [Number(r.report_id), Number(r.total)]));
    for (const r of reports) expect(byReport.get(Number(r.id))).toBe(Number(r.value));
    const events = emu.meterEvents();
    expect(events.map((e) => e.identifier).sort()).toEqual(reports.map((r) => r.identifier).sort());
    expect(emu.maxConcurrentPerCustomerMeter).toBeLessThanOrEqual(1);
    expect(emu.concurrencyViolations).toBe(0);

    const calls = emu.calls["POST /v1/billing/meter_events"] ?? 0;
    const attempts = reports.reduce((sum, r) => sum + Number(r.attempts), 0);
    expect(calls).toBeGreaterThan(reports.length); // faults really happened and were retried
    console.log(
      `fault mix: ${await stack
        .db("usage_events")
        .count({ n: "*" })
        .then((r) => r[0]!.n)} usage rows, ` +
        `${reports.length} reports, ${events.length} meter events, ${calls} meter-event calls ` +
        `(${attempts} recorded attempts), max concurrent per customer+meter ${emu.maxConcurrentPerCustomerMeter}, ` +
        `violations ${emu.concurrencyViolations}, usage written in ${writtenMs} ms, all sent after ${drainedMs} ms`,
    );
  });

  it("gives a report job as many stalls (worker crashes) as attempts: two kill -9s must not fail a report for good", () => {
    // Found by `npm run chaos`: BullMQ's default maxStalledCount of 1 failed a report whose workers
    // died twice under it, although Stripe had never refused it.
    const worker = stack.workers!.workers.find((w) => w.name === QUEUE.stripeReport)!;
    expect(worker.opts.maxStalledCount).toBe(stack.config.reporting.attempts);
  });
});
