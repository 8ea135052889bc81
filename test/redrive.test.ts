import { beforeEach, describe, expect, it } from "vitest";
import { flushUsage } from "../src/billing/reporting/usage-flush.js";
import { QUEUE, reportJobId } from "../src/queues/queues.js";
import { ADMIN_TOKEN, waitFor } from "./helpers/stack.js";
import { addUsage, linkedCustomer, reportsOf, useReportingStack } from "./helpers/reporting.js";

const { stack, emu } = useReportingStack();
beforeEach(() => emu.clearFaults());

const admin = async (path: string) => {
  const res = await fetch(`${stack.url}/admin${path}`, {
    method: "POST",
    headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
  });
  return { status: res.status, body: (await res.json()) as unknown };
};
const METER_EVENTS = { path: "/v1/billing/meter_events" };

/** A report whose every attempt met a Stripe 500: failed for good, in the failed set and dead-lettered. */
async function exhaustedReport() {
  const c = await linkedCustomer(stack.db, emu);
  await addUsage(stack.db, c.customerId, 2, 35);
  const attempts = stack.config.reporting.attempts;
  emu.failNext(attempts, 500, METER_EVENTS);
  const { reports } = await flushUsage(stack.web, { customerId: c.customerId });
  const id = reports[0]!.id;
  const letter = await waitFor(
    () =>
      stack
        .db("dead_letters")
        .where({ queue: QUEUE.stripeReport, job_id: reportJobId(id) })
        .first(),
    { what: "the report's dead letter" },
  );
  const job = await stack.web.queues.stripeReport.getJob(reportJobId(id));
  expect(job?.attemptsMade).toBe(attempts);
  return { ...c, id, letterId: letter.id as number, attempts };
}

/** Waits until the redriven job finished, one way or the other, and says which. */
const finalState = (id: number) =>
  waitFor(
    async () => {
      const state = await stack.web.queues.stripeReport.getJobState(reportJobId(id));
      return state === "completed" || state === "failed" ? state : undefined;
    },
    { what: "the redriven report job to finish" },
  );

describe("redriving a stripe-report that failed for good", () => {
  it.each([
    ["the dead-letter list", (r: { letterId: number }) => `/dead-letters/${r.letterId}/redrive`],
    ["the report's retry", (r: { id: number }) => `/reports/${r.id}/retry`],
  ])("through %s gives it its full attempts again", async (_path, url) => {
    const report = await exhaustedReport();
    // Stripe is still down for a few more calls: one attempt would not be enough.
    emu.failNext(3, 500, METER_EVENTS);
    const redriven = await admin(url(report));
    expect(redriven).toMatchObject({ status: 200, body: { outcome: "retried" } });

    expect(await finalState(report.id)).toBe("completed");
    expect((await reportsOf(stack.db, report.customerId))[0]).toMatchObject({ status: "sent" });
    expect(emu.totalFor(report.stripeCustomerId)).toBe(70);
    const letter = await waitFor(
      async () => {
        const row = await stack.db("dead_letters").where({ id: report.letterId }).first();
        return row.resolved_at ? row : undefined;
      },
      { what: "the dead letter to resolve" },
    );
    expect(letter).toMatchObject({ redrive_count: 1 });
    expect(letter.redriven_at).toBeInstanceOf(Date);
  });
});

describe("the report admin API's input", () => {
  const get = async (path: string) => {
    const res = await fetch(`${stack.url}/admin${path}`, {
      headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
    });
    return { status: res.status, body: (await res.json()) as { error?: { code: string; param: string } } };
  };

  it("refuses a bad status, limit or id with a 400 naming the field, through the one validator", async () => {
    expect(await get("/reports?status=maybe")).toMatchObject({
      status: 400,
      body: { error: { code: "invalid_status", param: "status" } },
    });
    for (const limit of ["0", "1001", "ten", "2.5"]) {
      expect(await get(`/reports?limit=${limit}`)).toMatchObject({
        status: 400,
        body: { error: { code: "invalid_limit", param: "limit" } },
      });
    }
    expect(await admin("/reports/abc/retry")).toMatchObject({
      status: 400,
      body: { error: { code: "invalid_id", param: "id" } },
    });
    expect((await admin("/reports/999999/retry")).status).toBe(404);
    expect(await get("/reports?status=failed&limit=5")).toMatchObject({
      status: 200,
      body: { object: "list" },
    });
  });
});
