import { beforeEach, describe, expect, it } from "vitest";
import Stripe from "stripe";
import { claimUsage, flushUsage } from "../src/billing/reporting/usage-flush.js";
import { createMeterEventStream, type StreamEvent } from "../src/billing/reporting/meter-stream.js";
import { assignBatches, batchesReports, enqueueReports } from "../src/billing/reporting/report-batches.js";
import type { PlannedReport } from "../src/billing/reporting/planned-reports.js";
import { sweepPendingReports } from "../src/billing/reporting/report-sweeper.js";
import { loadConfig } from "../src/config.js";
import { QUEUE, reportBatchJobId, reportJobId } from "../src/queues/queues.js";
import { waitFor } from "./helpers/stack.js";
import { addUsage, ledgerTotal, linkedCustomer, reportsOf, useReportingStack } from "./helpers/reporting.js";

// Flushes of 5 reports or more go through the stream, in batch jobs of up to 100 reports.
const { stack, emu } = useReportingStack({
  env: { REPORTING_METER_API: "auto", REPORTING_STREAM_MIN_REPORTS: "5" },
});
beforeEach(() => {
  emu.clearFaults();
  emu.resetStats();
});

const STREAM = "POST /v2/billing/meter_event_stream";
const SESSION = "POST /v2/billing/meter_event_session";
const V1 = "POST /v1/billing/meter_events";
const calls = (key: string) => emu.calls[key] ?? 0;

/** `n` linked customers with one ledger row each: one report each, as one flush claims them. */
async function customersWithUsage(n: number, tokens = 40) {
  const customers = [];
  for (let i = 0; i < n; i += 25) {
    const chunk = await Promise.all(
      Array.from({ length: Math.min(25, n - i) }, async (_, j) => {
        const c = await linkedCustomer(stack.db, emu);
        await addUsage(stack.db, c.customerId, 1, tokens + i + j);
        return c;
      }),
    );
    customers.push(...chunk);
  }
  return customers;
}

async function statuses(customers: Array<{ customerId: string }>): Promise<string[]> {
  return stack
    .db("usage_reports")
    .whereIn(
      "customer_id",
      customers.map((c) => c.customerId),
    )
    .orderBy("id")
    .pluck("status");
}

async function allSent(customers: Array<{ customerId: string }>): Promise<boolean> {
  const reports = await statuses(customers);
  return reports.length >= customers.length && reports.every((s) => s === "sent");
}

/** Claims the customers' usage into reports, committed but not enqueued (a flush that crashed). */
async function claimOnly() {
  const claimed = await stack.db.transaction((trx) => claimUsage(trx, stack.config));
  return claimed.reports;
}

/** Emulator totals equal the ledger for every customer, and each report reached Stripe once. */
async function expectStripeEqualsLedger(customers: Array<{ customerId: string; stripeCustomerId: string }>) {
  for (const c of customers) {
    expect(emu.totalFor(c.stripeCustomerId, "meterline_tokens")).toBe(
      await ledgerTotal(stack.db, c.customerId),
    );
    const reports = await reportsOf(stack.db, c.customerId);
    const events = emu.meterEvents().filter((e) => e.customer === c.stripeCustomerId);
    expect(events.map((e) => e.identifier).sort()).toEqual(reports.map((r) => r.identifier).sort());
  }
}

const stripeIdsOf = (customers: Array<{ stripeCustomerId: string }>) =>
  new Set(customers.map((c) => c.stripeCustomerId));

const event = (customer: string, i: number): StreamEvent => ({
  event_name: "meterline_tokens",
  identifier: `mlr_test_${customer}_${i}`,
  payload: { stripe_customer_id: customer, value: "1" },
  timestamp: new Date().toISOString(),
});

describe("choosing the meter API", () => {
  const config = (api: string) =>
    loadConfig({ REPORTING_METER_API: api, REPORTING_STREAM_MIN_REPORTS: "10" } as Record<string, string>);

  it("batches a flush of at least REPORTING_STREAM_MIN_REPORTS reports under auto, every flush under v2", () => {
    expect(batchesReports(config("auto"), 9)).toBe(false);
    expect(batchesReports(config("auto"), 10)).toBe(true);
    expect(batchesReports(config("v1"), 1_000)).toBe(false);
    expect(batchesReports(config("v2"), 1)).toBe(true);
    expect(() => config("v3")).toThrow(/REPORTING_METER_API/);
  });

  it("packs reports into batches of at most 100, keeping a customer's reports together", () => {
    const planned = (customer: string, ids: number[]) =>
      ids.map((id) => ({ id, customerId: customer, eventName: "meterline_tokens" }) as PlannedReport);
    const reports = [
      ...planned("a", [1, 2, 3]),
      ...Array.from({ length: 96 }, (_, i) => planned(`c${i}`, [10 + i])).flat(),
      ...planned("b", [200, 201]),
      ...planned(
        "big",
        Array.from({ length: 150 }, (_, i) => 300 + i),
      ),
    ];
    assignBatches(reports);
    const batches = new Map<number | undefined, PlannedReport[]>();
    for (const r of reports) batches.set(r.batchId, [...(batches.get(r.batchId) ?? []), r]);
    expect([...batches.values()].map((b) => b.length)).toEqual([99, 2, 100, 50]);
    // Named by their first report; "b" did not fit beside "a" and the 96 others, so it starts the next.
    expect([...batches.keys()]).toEqual([1, 200, 300, 400]);
  });

  it("sends a small flush as v1 meter events, one job each, and a big one as stream batches", async () => {
    const few = await customersWithUsage(3);
    const small = await flushUsage(stack.web);
    expect(small.reports).toHaveLength(3);
    expect((await stack.web.queues.stripeReport.getJob(reportJobId(small.reports[0]!.id)))?.data).toEqual({
      reportId: small.reports[0]!.id,
    });
    await waitFor(() => allSent(few), { what: "small flush sent", timeoutMs: 30_000 });
    expect(calls(V1)).toBe(3);
    expect(calls(STREAM)).toBe(0);

    const many = await customersWithUsage(8);
    const big = await flushUsage(stack.web);
    const batchId = big.reports[0]!.batchId!;
    expect(big.reports.map((r) => r.batchId)).toEqual(big.reports.map(() => batchId));
    const job = await stack.web.queues.stripeReport.getJob(reportBatchJobId(batchId));
    expect(job?.data).toEqual({ batchId, reportIds: big.reports.map((r) => r.id).sort((a, b) => a - b) });
    await waitFor(() => allSent(many), { what: "big flush sent", timeoutMs: 30_000 });
    expect(calls(V1)).toBe(3);
    expect(calls(STREAM)).toBe(1);
    await expectStripeEqualsLedger([...few, ...many]);
  }, 60_000);
});

describe("reporting through the v2 meter event stream", () => {
  it("flush → one stream request per batch of at most 100 → the emulator's totals equal the ledger", async () => {
    const customers = await customersWithUsage(250);
    const { reports } = await flushUsage(stack.web);
    expect(reports).toHaveLength(250);
    expect(new Set(reports.map((r) => r.batchId)).size).toBe(3);
    await waitFor(() => allSent(customers), { what: "250 reports sent", timeoutMs: 60_000 });

    await expectStripeEqualsLedger(customers);
    expect(calls(V1)).toBe(0);
    // The emulator refuses a request of more than 100 events (a refused batch would go report by
    // report), so 250 reports in 3 requests are batches of at most 100.
    expect(calls(STREAM)).toBe(3);
    expect(emu.errorReports()).toEqual([]);
    const attempts = await stack
      .db("usage_reports")
      .whereIn(
        "id",
        reports.map((r) => r.id),
      )
      .pluck("attempts");
    expect(attempts).toEqual(reports.map(() => 1));
  }, 120_000);

  it("renews an expired session and sends the reports", async () => {
    const first = await customersWithUsage(6);
    await flushUsage(stack.web);
    await waitFor(() => allSent(first), { what: "first batch sent", timeoutMs: 30_000 });
    const sessions = calls(SESSION);

    emu.expireMeterEventSessions();
    const second = await customersWithUsage(6);
    await flushUsage(stack.web);
    await waitFor(() => allSent(second), { what: "second batch sent", timeoutMs: 30_000 });
    expect(calls(SESSION)).toBe(sessions + 1);
    await expectStripeEqualsLedger([...first, ...second]);
    const attempts = await stack
      .db("usage_reports")
      .whereIn(
        "customer_id",
        second.map((c) => c.customerId),
      )
      .pluck("attempts");
    // The renewal happens inside the one attempt: no report spent a retry on it.
    expect(attempts).toEqual(second.map(() => 1));
  }, 60_000);

  it("retries a batch Stripe refused with a 500 as one request, each report attempted twice", async () => {
    const customers = await customersWithUsage(5);
    emu.failNext(1, 500, { path: "/v2/billing/meter_event_stream" });
    await flushUsage(stack.web);
    await waitFor(() => allSent(customers), { what: "reports sent after a 500", timeoutMs: 30_000 });
    await expectStripeEqualsLedger(customers);
    expect(calls(STREAM)).toBe(2);
    const reports = await stack
      .db("usage_reports")
      .whereIn(
        "customer_id",
        customers.map((c) => c.customerId),
      )
      .select("attempts", "last_error");
    expect(reports).toEqual(customers.map(() => ({ attempts: 2, last_error: null })));
  }, 60_000);

  it("a batch whose answer was lost after Stripe recorded it is resent and counted once (identifiers)", async () => {
    const customers = await customersWithUsage(7);
    // Stripe records the events, then the connection drops: the worker never hears back, nor does
    // the SDK's own reconnect.
    emu.failNext(2, "drop-after", { path: "/v2/billing/meter_event_stream" });
    await flushUsage(stack.web);
    await waitFor(() => allSent(customers), {
      what: "reports sent after the lost answer",
      timeoutMs: 30_000,
    });

    await expectStripeEqualsLedger(customers);
    expect(calls(STREAM)).toBeGreaterThanOrEqual(3);
    expect(emu.meterEvents().filter((e) => stripeIdsOf(customers).has(e.customer))).toHaveLength(7);
  }, 60_000);

  it("a batch leaves out its reports already sent, and sends the rest in one request", async () => {
    const customers = await customersWithUsage(6);
    const reports = await claimOnly();
    expect(reports).toHaveLength(6);
    // Sent meanwhile by a job of its own (an operator's retry): the batch must not send it again.
    await stack
      .db("usage_reports")
      .where({ id: reports[0]!.id })
      .update({ status: "sent", sent_at: new Date() });
    await enqueueReports(stack.web.queues.stripeReport, reports);
    await waitFor(() => allSent(customers), { what: "the rest of the batch sent", timeoutMs: 30_000 });

    expect(calls(STREAM)).toBe(1);
    const stripeId = customers.find((c) => c.customerId === reports[0]!.customerId)!.stripeCustomerId;
    expect(emu.meterEvents().filter((e) => e.customer === stripeId)).toEqual([]);
    expect(emu.meterEvents().filter((e) => stripeIdsOf(customers).has(e.customer))).toHaveLength(5);
  }, 60_000);

  it("a report the batch cannot send goes to a job of its own, failed with a dead letter; the others are sent", async () => {
    const customers = await customersWithUsage(5);
    const reports = await claimOnly();
    const unlinked = reports[2]!;
    await stack.db("customers").where({ id: unlinked.customerId }).update({ stripe_customer_id: null });
    await enqueueReports(stack.web.queues.stripeReport, reports);
    await waitFor(async () => (await statuses(customers)).filter((s) => s === "sent").length === 4, {
      what: "four reports sent",
      timeoutMs: 30_000,
    });
    await waitFor(
      async () => (await stack.db("usage_reports").where({ id: unlinked.id }).first())?.status === "failed",
      { what: "the unlinked report failed", timeoutMs: 30_000 },
    );

    expect(calls(STREAM)).toBe(1);
    const letter = await stack
      .db("dead_letters")
      .where({ queue: QUEUE.stripeReport, job_id: reportJobId(unlinked.id) })
      .first();
    expect(letter?.reason).toMatch(/no Stripe customer id/);
    await expectStripeEqualsLedger(customers.filter((c) => c.customerId !== unlinked.customerId));
  }, 60_000);

  it("a batch Stripe refused as a whole (400) is sent report by report", async () => {
    const customers = await customersWithUsage(5);
    emu.failNext(1, 400, { path: "/v2/billing/meter_event_stream" });
    await flushUsage(stack.web);
    await waitFor(() => allSent(customers), { what: "reports sent one by one", timeoutMs: 30_000 });
    await expectStripeEqualsLedger(customers);
    // Under auto a report of its own is a v1 meter event.
    expect(calls(STREAM)).toBe(1);
    expect(calls(V1)).toBe(5);
  }, 60_000);

  it("the sweeper leaves a live batch alone and re-enqueues a lost one as its batch", async () => {
    const customers = await customersWithUsage(5);
    const reports = await claimOnly();
    const batchId = reports[0]!.batchId!;
    const ids = reports.map((r) => r.id).sort((a, b) => a - b);
    // Alive (delayed): its reports are not lost.
    const queue = stack.web.queues.stripeReport;
    const job = await queue.add(
      "batch",
      { batchId, reportIds: ids },
      { jobId: reportBatchJobId(batchId), delay: 600_000 },
    );
    expect((await sweepPendingReports(stack.web, { graceMs: 0 })).requeued).toEqual([]);
    expect(await queue.getJob(reportJobId(ids[0]!))).toBeUndefined();

    // Gone (a Redis that lost it): the sweeper puts every report back in one batch job.
    await job.remove();
    const swept = await sweepPendingReports(stack.web, { graceMs: 0 });
    expect(swept.requeued).toEqual(ids);
    expect((await queue.getJob(reportBatchJobId(batchId)))?.data).toEqual({ batchId, reportIds: ids });
    await waitFor(() => allSent(customers), { what: "swept batch sent", timeoutMs: 30_000 });
    expect(calls(STREAM)).toBe(1);
    await expectStripeEqualsLedger(customers);
  }, 60_000);
});

describe("the meter event stream client", () => {
  const client = () => new Stripe("sk_test_stream", { host: "127.0.0.1", port: emu.port, protocol: "http" });

  it("sends up to 100 events in one request and refuses more", async () => {
    const { id: customer } = emu.createCustomer();
    const stream = createMeterEventStream({ stripe: client(), config: stack.config });
    await stream.send(Array.from({ length: 100 }, (_, i) => event(customer, i)));
    await expect(
      stream.send(Array.from({ length: 101 }, (_, i) => event(customer, 100 + i))),
    ).rejects.toThrow(/at most 100/);
    expect(calls(STREAM)).toBe(1);
    expect(calls(SESSION)).toBe(1);
    expect(emu.totalFor(customer, "meterline_tokens")).toBe(100);
  });

  it("renews its session a minute before it expires, without a refused request", async () => {
    const { id: customer } = emu.createCustomer();
    let now = Date.now();
    const stream = createMeterEventStream({ stripe: client(), config: stack.config, now: () => now });
    await stream.send([event(customer, 0)]);
    now += 13 * 60_000;
    await stream.send([event(customer, 1)]);
    expect(calls(SESSION)).toBe(1);
    now += 60_000 + 1;
    await stream.send([event(customer, 2)]);
    expect(calls(SESSION)).toBe(2);
    expect(calls(STREAM)).toBe(3);
    expect(emu.totalFor(customer, "meterline_tokens")).toBe(3);
  });

  it("a resent identifier is deduplicated, shared with v1 meter events", async () => {
    const { id: customer } = emu.createCustomer();
    const stream = createMeterEventStream({ stripe: client(), config: stack.config });
    await stream.send([event(customer, 0)]);
    await stream.send([event(customer, 0), event(customer, 1)]);
    await expect(
      client().billing.meterEvents.create({
        event_name: "meterline_tokens",
        payload: { stripe_customer_id: customer, value: "1" },
        identifier: event(customer, 0).identifier,
      }),
    ).rejects.toThrow(/already exists/);
    expect(emu.totalFor(customer, "meterline_tokens")).toBe(2);
    expect(emu.errorReports()).toEqual([]);
  });

  it("rejects a request Stripe refused", async () => {
    const { id: customer } = emu.createCustomer();
    const stream = createMeterEventStream({ stripe: client(), config: stack.config });
    emu.failNext(1, 400, { path: "/v2/billing/meter_event_stream" });
    await expect(stream.send([event(customer, 0), event(customer, 1)])).rejects.toThrow();
    expect(emu.totalFor(customer, "meterline_tokens")).toBe(0);
  });
});
