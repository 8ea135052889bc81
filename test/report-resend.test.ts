import Stripe from "stripe";
import { beforeAll, beforeEach, describe, expect, it } from "vitest";
import { createLogger } from "../src/platform/logger.js";
import { flushUsage } from "../src/billing/reporting/usage-flush.js";
import { retryReport } from "../src/billing/reporting/report-retry.js";
import { QUEUE, reportJobId } from "../src/queues/queues.js";
import { useStack, waitFor } from "./helpers/stack.js";
import { addUsage, ledgerTotal, linkedCustomer, reportsOf } from "./helpers/reporting.js";

// One attempt: a report whose call failed stays failed until an operator retries it, a day later.
const stack = useStack({ stripe: "reporting", env: { STRIPE_REPORT_ATTEMPTS: "1" }, worker: false });
let stripe: Stripe;
const lines: Array<Record<string, unknown>> = [];
const sink = { write: (line: string) => void lines.push(JSON.parse(line)) };
const SEND = "POST /v1/billing/meter_events";
const SUMMARIES = "GET /v1/billing/meters/:id/event_summaries";

beforeAll(async () => {
  stripe = new Stripe("sk_test_meterline", { host: "127.0.0.1", port: stack.stripe.port, protocol: "http" });
  await stripe.billing.meters.create({
    display_name: "meterline tokens",
    event_name: "meterline_tokens",
    default_aggregation: { formula: "sum" },
    customer_mapping: { event_payload_key: "stripe_customer_id", type: "by_id" },
    value_settings: { event_payload_key: "value" },
  });
  await stack.startWorker({}, { logger: createLogger("info", "worker", sink) });
  // The scheduler's first flush runs at boot; let it pass so tests decide when to flush.
  await waitFor(async () => (await stack.web.queues.usageFlush.getCompletedCount()) >= 1, {
    what: "the first scheduled flush",
  });
});
beforeEach(() => stack.stripe.clearFaults());

// Every report of the customer: a flush the worker runs at boot may have claimed some rows first.
const settled = (customerId: string, status: "sent" | "failed") =>
  waitFor(
    async () => {
      const reports = await reportsOf(stack.db, customerId);
      return reports.length > 0 && reports.every((r) => r.status === status);
    },
    { what: `reports ${status}` },
  );

/** A report whose one attempt failed with `fault`; returns its id. */
async function failedReport(customerId: string, fault: "drop" | "drop-after"): Promise<number> {
  await addUsage(stack.db, customerId, 3, 40);
  // stripe-node reconnects once by itself with the same key: fail both calls.
  stack.stripe.failNext(2, fault, { path: SEND });
  const { reports } = await flushUsage(stack.web, { customerId });
  await settled(customerId, "failed");
  return reports[0]!.id;
}

/** Both sides of Stripe's 24-hour window pass: Stripe forgets identifiers, the first attempt ages. */
async function aDayLater(reportId: number): Promise<void> {
  stack.stripe.expireIdentifiers();
  await stack
    .db("usage_reports")
    .where({ id: reportId })
    .update({ first_attempted_at: stack.db.raw("first_attempted_at - interval '25 hours'") });
}

describe("resending a report after Stripe's 24-hour identifier window", () => {
  it("within the window sends without asking Stripe for its figures", async () => {
    const c = await linkedCustomer(stack.db, stack.stripe);
    await addUsage(stack.db, c.customerId, 2, 25);
    await flushUsage(stack.web, { customerId: c.customerId });
    await settled(c.customerId, "sent");
    expect(stack.stripe.totalFor(c.stripeCustomerId)).toBe(50);
    expect(stack.stripe.calls[SUMMARIES]).toBeUndefined();
    expect((await reportsOf(stack.db, c.customerId))[0].first_attempted_at).toBeInstanceOf(Date);
  });

  it("does not count twice a report whose first attempt reached Stripe but whose answer was lost", async () => {
    const c = await linkedCustomer(stack.db, stack.stripe);
    const id = await failedReport(c.customerId, "drop-after");
    expect(stack.stripe.totalFor(c.stripeCustomerId)).toBe(120); // Stripe has it; meterline does not know
    await aDayLater(id);
    const sends = stack.stripe.calls[SEND];

    expect(await retryReport(stack.db, stack.web.queues.stripeReport, id)).toBe("retried");
    await settled(c.customerId, "sent");
    expect(stack.stripe.totalFor(c.stripeCustomerId)).toBe(await ledgerTotal(stack.db, c.customerId));
    expect(stack.stripe.calls[SEND]).toBe(sends);
    const job = await stack.web.queues.stripeReport.getJob(reportJobId(id));
    expect(job?.returnvalue).toMatchObject({ status: "sent", counted: true });
  });

  it("sends once a report that never reached Stripe", async () => {
    const c = await linkedCustomer(stack.db, stack.stripe);
    const id = await failedReport(c.customerId, "drop");
    expect(stack.stripe.totalFor(c.stripeCustomerId)).toBe(0);
    await aDayLater(id);

    expect(await retryReport(stack.db, stack.web.queues.stripeReport, id)).toBe("retried");
    await settled(c.customerId, "sent");
    expect(stack.stripe.totalFor(c.stripeCustomerId)).toBe(120);
    expect(stack.stripe.meterEvents().filter((e) => e.customer === c.stripeCustomerId)).toHaveLength(1);
  });

  it("fails the report for an operator when Stripe's figures match neither case", async () => {
    const c = await linkedCustomer(stack.db, stack.stripe);
    const id = await failedReport(c.customerId, "drop-after");
    const [report] = await reportsOf(stack.db, c.customerId);
    // Something else was counted in the same minute for the same Stripe customer.
    await stripe.billing.meterEvents.create({
      event_name: "meterline_tokens",
      payload: { stripe_customer_id: c.stripeCustomerId, value: "7" },
      timestamp: Math.floor(report.event_at.getTime() / 1000),
    });
    await aDayLater(id);

    await retryReport(stack.db, stack.web.queues.stripeReport, id);
    await waitFor(async () => (await reportsOf(stack.db, c.customerId))[0].attempts === 2, {
      what: "the retry to finish",
    });
    const [after] = await reportsOf(stack.db, c.customerId);
    expect(after.status).toBe("failed");
    expect(after.last_error).toMatch(/Stripe counts 127 for .*, sent reports 0, this report 120/);
    expect(stack.stripe.totalFor(c.stripeCustomerId)).toBe(127); // nothing resent
    const letter = await stack
      .db("dead_letters")
      .where({ queue: QUEUE.stripeReport, job_id: reportJobId(id) })
      .first();
    expect(letter.resolved_at).toBeNull();
    const logged = lines.find((l) => l.reportId === id && l.level === 50 && l.stripeValue === 127);
    expect(logged?.msg).toMatch(/REPORT NEEDS A CHECK/);
  });
});
