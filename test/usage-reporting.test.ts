import { beforeEach, describe, expect, it } from "vitest";
import Stripe from "stripe";
import { flushUsage, claimUsage } from "../src/billing/reporting/usage-flush.js";
import { enqueueReports } from "../src/billing/reporting/report-batches.js";
import { sweepPendingReports } from "../src/billing/reporting/report-sweeper.js";
import { reportJobId, QUEUE } from "../src/queues/queues.js";
import { ADMIN_TOKEN, waitFor } from "./helpers/stack.js";
import { addUsage, ledgerTotal, linkedCustomer, reportsOf, useReportingStack } from "./helpers/reporting.js";

const { stack, emu } = useReportingStack();
beforeEach(() => emu.clearFaults());

const flush = (customerId?: string) => flushUsage(stack.web, { customerId });
const admin = (path: string, method = "POST") =>
  fetch(`${stack.url}/admin${path}`, { method, headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
// eslint-disable-next-line @typescript-eslint/no-explicit-any
const json = async (res: Response | Promise<Response>): Promise<any> => (await res).json();
const eventsOf = (stripeCustomerId: string) =>
  emu.meterEvents().filter((e) => e.customer === stripeCustomerId);
const allSent = async (customerId: string) => {
  const reports = await reportsOf(stack.db, customerId);
  return reports.length > 0 && reports.every((r) => r.status === "sent");
};
const reportJob = (id: number) => stack.web.queues.stripeReport.getJob(reportJobId(id));

describe("reporting usage to Stripe", () => {
  it("sends one meter event per customer and window whose value is the ledger's sum (chats from 3 customers)", async () => {
    const customers = await Promise.all([1, 2, 3].map(() => stack.customer()));
    for (const c of customers) {
      const { id } = emu.createCustomer();
      await stack.db("customers").where({ id: c.customerId }).update({ stripe_customer_id: id });
      for (let i = 0; i < 4; i++) {
        await c.openai.chat.completions.create({
          model: "gpt-4o-mini",
          messages: [{ role: "user", content: `question ${i}` }],
        });
      }
    }
    const result = await flush();
    expect(result.rows).toBe(12);

    for (const c of customers) {
      await waitFor(() => allSent(c.customerId), { what: "reports sent" });
      const { stripe_customer_id: stripeId } = await stack
        .db("customers")
        .where({ id: c.customerId })
        .first();
      const windows = await stack
        .db("usage_events")
        .where({ customer_id: c.customerId })
        .countDistinct({ n: stack.db.raw("date_trunc('hour', created_at)") })
        .first();
      const events = eventsOf(stripeId);
      expect(events).toHaveLength(Number(windows?.n));
      expect(emu.totalFor(stripeId, "meterline_tokens")).toBe(await ledgerTotal(stack.db, c.customerId));
      expect(
        await stack.db("usage_events").where({ customer_id: c.customerId }).whereNull("report_id"),
      ).toEqual([]);
      const reports = await reportsOf(stack.db, c.customerId);
      expect(events.map((e) => e.identifier).sort()).toEqual(reports.map((r) => r.identifier).sort());
    }
    // Nothing left: a second flush creates no report.
    expect((await flush()).reports).toEqual([]);
  });

  it("retries 500s until Stripe answers, and counts the event once", async () => {
    const c = await linkedCustomer(stack.db, emu);
    await addUsage(stack.db, c.customerId, 3, 50);
    emu.failNext(3, 500, { path: "/v1/billing/meter_events" });
    const { reports } = await flush(c.customerId);
    await waitFor(() => allSent(c.customerId), { what: "report sent after 500s" });

    const [report] = await reportsOf(stack.db, c.customerId);
    expect(report.attempts).toBe(4);
    expect(eventsOf(c.stripeCustomerId)).toHaveLength(1);
    expect(emu.totalFor(c.stripeCustomerId)).toBe(150);
    expect((await reportJob(reports[0]!.id))?.attemptsMade).toBe(4);
  });

  it("marks a report sent when Stripe says an event with its identifier already exists", async () => {
    const c = await linkedCustomer(stack.db, emu);
    await addUsage(stack.db, c.customerId, 2, 70);
    // Claim without enqueueing, deliver the event behind meterline's back, then let the job run.
    const { reports } = await stack.db.transaction((trx) =>
      claimUsage(trx, stack.config, { customerId: c.customerId }),
    );
    const [row] = await reportsOf(stack.db, c.customerId);
    const stripe = new Stripe("sk_test_other", { host: "127.0.0.1", port: emu.port, protocol: "http" });
    await stripe.billing.meterEvents.create({
      event_name: "meterline_tokens",
      payload: { stripe_customer_id: c.stripeCustomerId, value: "140" },
      identifier: row.identifier,
    });
    await enqueueReports(stack.web.queues.stripeReport, reports);
    await waitFor(() => allSent(c.customerId), { what: "duplicate treated as sent" });

    expect((await reportJob(reports[0]!.id))?.returnvalue).toEqual({ status: "sent", duplicate: true });
    expect(emu.totalFor(c.stripeCustomerId)).toBe(140);
  });

  it("waits out a 429 without spending an attempt", async () => {
    const c = await linkedCustomer(stack.db, emu);
    await addUsage(stack.db, c.customerId, 1, 30);
    emu.failNext(2, 429, { path: "/v1/billing/meter_events" });
    const { reports } = await flush(c.customerId);
    await waitFor(() => allSent(c.customerId), { what: "report sent after 429s" });

    const job = await reportJob(reports[0]!.id);
    expect(job?.attemptsMade).toBe(1); // the successful attempt only
    expect((await reportsOf(stack.db, c.customerId))[0].attempts).toBe(3); // three calls reached Stripe
    expect(emu.totalFor(c.stripeCustomerId)).toBe(30);
  });

  it("fails a report for good on a permanent 400, dead-letters it, and sends it once after the fix and a retry", async () => {
    const c = await linkedCustomer(stack.db, emu, "cus_notyetinstripe");
    await addUsage(stack.db, c.customerId, 2, 45);
    const { reports } = await flush(c.customerId);
    const id = reports[0]!.id;
    await waitFor(async () => (await reportsOf(stack.db, c.customerId))[0]?.status === "failed", {
      what: "report failed",
    });

    expect(await stack.web.queues.stripeReport.getJobState(reportJobId(id))).toBe("failed");
    const letter = await waitFor(() =>
      stack
        .db("dead_letters")
        .where({ queue: QUEUE.stripeReport, job_id: reportJobId(id) })
        .first(),
    );
    expect(letter.reason).toMatch(/No such customer/);
    const listed = await json(admin("/reports?status=failed", "GET"));
    expect(listed.data.map((r: { id: number }) => r.id)).toContain(id);
    expect((await admin("/reports?status=bogus", "GET")).status).toBe(400);

    emu.createCustomer({ id: "cus_notyetinstripe" });
    const retried = await admin(`/reports/${id}/retry`);
    expect(await retried.json()).toEqual({ id, outcome: "retried" });
    await waitFor(() => allSent(c.customerId), { what: "report sent after retry" });
    expect(emu.totalFor("cus_notyetinstripe")).toBe(90);
    // Repeating the retry, or retrying every failed report, sends nothing again.
    expect(await (await admin(`/reports/${id}/retry`)).json()).toEqual({ id, outcome: "already-sent" });
    const all = await json(admin("/reports/retry-failed"));
    expect(all.data.map((r: { id: number }) => r.id)).not.toContain(id);
    expect(emu.totalFor("cus_notyetinstripe")).toBe(90);
    await waitFor(async () => {
      const l = await stack.db("dead_letters").where({ id: letter.id }).first();
      return l.resolved_at !== null;
    });
    expect((await admin("/reports/999999/retry")).status).toBe(404);
    expect((await admin("/reports/abc/retry")).status).toBe(400);
  });

  it("sends a report whose enqueue was lost in a crash through the sweeper, and never twice", async () => {
    const c = await linkedCustomer(stack.db, emu);
    await addUsage(stack.db, c.customerId, 3, 20);
    // The flush committed, then the process died before adding the job.
    const { reports } = await stack.db.transaction((trx) =>
      claimUsage(trx, stack.config, { customerId: c.customerId }),
    );
    const id = reports[0]!.id;
    expect(await stack.web.queues.stripeReport.getJobState(reportJobId(id))).toBe("unknown");

    const swept = await sweepPendingReports(stack.web, { graceMs: 0 });
    expect(swept.requeued).toContain(id);
    await waitFor(() => allSent(c.customerId), { what: "swept report sent" });
    // A late original enqueue, another sweep and another flush change nothing.
    await enqueueReports(stack.web.queues.stripeReport, [{ id }]);
    expect((await sweepPendingReports(stack.web, { graceMs: 0 })).requeued).not.toContain(id);
    expect((await flush(c.customerId)).reports).toEqual([]);
    expect(eventsOf(c.stripeCustomerId)).toHaveLength(1);
    expect(emu.totalFor(c.stripeCustomerId)).toBe(60);
  });

  it("keeps the usage of a customer without a Stripe id until one is set, then flushes it on demand", async () => {
    const c = await stack.customer();
    await addUsage(stack.db, c.customerId, 2, 10);
    const result = await flush();
    expect(result.unlinked).toContainEqual({ customerId: c.customerId, rows: 2, tokens: 20 });
    expect(await reportsOf(stack.db, c.customerId)).toEqual([]);
    const refused = await admin(`/customers/${c.customerId}/flush`);
    expect(refused.status).toBe(409);
    expect((await json(refused)).error.code).toBe("customer_not_linked");
    expect((await admin(`/customers/cust_nobody/flush`)).status).toBe(404);

    const { id: stripeId } = emu.createCustomer();
    await stack.db("customers").where({ id: c.customerId }).update({ stripe_customer_id: stripeId });
    const flushed = await json(admin(`/customers/${c.customerId}/flush`));
    expect(flushed.rows).toBe(2);
    await waitFor(() => allSent(c.customerId), { what: "flushed report sent" });
    expect(emu.totalFor(stripeId)).toBe(20);
  });
});
