import { beforeEach, describe, expect, it } from "vitest";
import Stripe from "stripe";
import { flushUsage } from "../src/billing/reporting/usage-flush.js";
import {
  createMeterEventStream,
  flushMeterApi,
  meterApiFor,
  type StreamEvent,
} from "../src/billing/reporting/meter-stream.js";
import { loadConfig } from "../src/config.js";
import { reportJobId } from "../src/queues/queues.js";
import { waitFor } from "./helpers/stack.js";
import { addUsage, ledgerTotal, linkedCustomer, reportsOf, useReportingStack } from "./helpers/reporting.js";

// Flushes of 5 reports or more go through the stream; the worker runs enough report jobs at once
// to fill a request of 100 events.
const { stack, emu } = useReportingStack({
  env: { REPORTING_METER_API: "auto", REPORTING_STREAM_MIN_REPORTS: "5", STRIPE_REPORT_CONCURRENCY: "200" },
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

async function allSent(customers: Array<{ customerId: string }>): Promise<boolean> {
  const reports = await stack
    .db("usage_reports")
    .whereIn(
      "customer_id",
      customers.map((c) => c.customerId),
    )
    .select("status");
  return reports.length >= customers.length && reports.every((r) => r.status === "sent");
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

  it("streams a flush of at least REPORTING_STREAM_MIN_REPORTS reports under auto, and follows v1|v2 when set", () => {
    expect(flushMeterApi(config("auto"), 9)).toBeUndefined();
    expect(flushMeterApi(config("auto"), 10)).toBe("v2");
    expect(flushMeterApi(config("v1"), 1_000)).toBeUndefined();
    expect(meterApiFor(config("auto"), undefined)).toBe("v1");
    expect(meterApiFor(config("auto"), "v2")).toBe("v2");
    // An explicit setting wins over what a queued job asked for (an operator switching back to v1).
    expect(meterApiFor(config("v1"), "v2")).toBe("v1");
    expect(meterApiFor(config("v2"), undefined)).toBe("v2");
    expect(() => config("v3")).toThrow(/REPORTING_METER_API/);
  });

  it("sends a small flush as v1 meter events and a big one through the stream", async () => {
    const few = await customersWithUsage(3);
    const small = await flushUsage(stack.web);
    expect(small.reports).toHaveLength(3);
    await waitFor(() => allSent(few), { what: "small flush sent", timeoutMs: 30_000 });
    expect(calls(V1)).toBe(3);
    expect(calls(STREAM)).toBe(0);

    const many = await customersWithUsage(8);
    const big = await flushUsage(stack.web);
    const job = await stack.web.queues.stripeReport.getJob(reportJobId(big.reports[0]!.id));
    expect(job?.data).toEqual({ reportId: big.reports[0]!.id, api: "v2" });
    await waitFor(() => allSent(many), { what: "big flush sent", timeoutMs: 30_000 });
    expect(calls(V1)).toBe(3);
    expect(calls(STREAM)).toBeGreaterThanOrEqual(1);
    await expectStripeEqualsLedger([...few, ...many]);
  }, 60_000);
});

describe("reporting through the v2 meter event stream", () => {
  it("flush → stream → the emulator's totals equal the ledger, in requests of at most 100 events", async () => {
    const customers = await customersWithUsage(150);
    const { reports } = await flushUsage(stack.web);
    expect(reports).toHaveLength(150);
    await waitFor(() => allSent(customers), { what: "150 reports sent", timeoutMs: 60_000 });

    await expectStripeEqualsLedger(customers);
    expect(calls(V1)).toBe(0);
    // The emulator refuses a request of more than 100 events, so every report sent proves the cap;
    // far fewer requests than reports proves the batching.
    expect(calls(STREAM)).toBeGreaterThanOrEqual(2);
    expect(calls(STREAM)).toBeLessThan(75);
    expect(emu.errorReports()).toEqual([]);
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

  it("a request lost after Stripe recorded it is resent per report and counted once (identifiers)", async () => {
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
    // Both dropped requests reached the emulator with events it recorded; the later requests resent
    // some of them, and every identifier counts once.
    expect(calls(STREAM)).toBeGreaterThanOrEqual(3);
    expect(emu.meterEvents().filter((e) => stripeIdsOf(customers).has(e.customer))).toHaveLength(7);
  }, 60_000);

  it("retries a request Stripe refused with a 500, report by report", async () => {
    const customers = await customersWithUsage(5);
    emu.failNext(2, 500, { path: "/v2/billing/meter_event_stream" });
    await flushUsage(stack.web);
    await waitFor(() => allSent(customers), { what: "reports sent after 500s", timeoutMs: 30_000 });
    await expectStripeEqualsLedger(customers);
    expect(calls(STREAM)).toBeGreaterThanOrEqual(3);
  }, 60_000);
});

describe("the meter event stream client", () => {
  const client = () => new Stripe("sk_test_stream", { host: "127.0.0.1", port: emu.port, protocol: "http" });

  it("packs events sent together into requests of 100", async () => {
    const { id: customer } = emu.createCustomer();
    const stream = createMeterEventStream({ stripe: client(), config: stack.config });
    await Promise.all(Array.from({ length: 250 }, (_, i) => stream.send(event(customer, i))));
    expect(calls(STREAM)).toBe(3);
    expect(calls(SESSION)).toBe(1);
    expect(emu.totalFor(customer, "meterline_tokens")).toBe(250);
  });

  it("renews its session a minute before it expires, without a refused request", async () => {
    const { id: customer } = emu.createCustomer();
    let now = Date.now();
    const stream = createMeterEventStream({ stripe: client(), config: stack.config, now: () => now });
    await stream.send(event(customer, 0));
    now += 13 * 60_000;
    await stream.send(event(customer, 1));
    expect(calls(SESSION)).toBe(1);
    now += 60_000 + 1;
    await stream.send(event(customer, 2));
    expect(calls(SESSION)).toBe(2);
    expect(calls(STREAM)).toBe(3);
    expect(emu.totalFor(customer, "meterline_tokens")).toBe(3);
  });

  it("a resent identifier is deduplicated, shared with v1 meter events", async () => {
    const { id: customer } = emu.createCustomer();
    const stream = createMeterEventStream({ stripe: client(), config: stack.config });
    await stream.send(event(customer, 0));
    await stream.send(event(customer, 0));
    await expect(
      client().billing.meterEvents.create({
        event_name: "meterline_tokens",
        payload: { stripe_customer_id: customer, value: "1" },
        identifier: event(customer, 0).identifier,
      }),
    ).rejects.toThrow(/already exists/);
    expect(emu.totalFor(customer, "meterline_tokens")).toBe(1);
    expect(emu.errorReports()).toEqual([]);
  });

  it("rejects every event of a request Stripe refused", async () => {
    const { id: customer } = emu.createCustomer();
    const stream = createMeterEventStream({ stripe: client(), config: stack.config });
    emu.failNext(1, 400, { path: "/v2/billing/meter_event_stream" });
    const results = await Promise.allSettled([
      stream.send(event(customer, 0)),
      stream.send(event(customer, 1)),
    ]);
    expect(results.map((r) => r.status)).toEqual(["rejected", "rejected"]);
    expect(emu.totalFor(customer, "meterline_tokens")).toBe(0);
  });
});
