import { beforeAll, describe, expect, it } from "vitest";
import { flushUsage } from "../src/billing/reporting/usage-flush.js";
import { QUEUE, reportJobId } from "../src/queues/queues.js";
import { useStack, waitFor, type Stack } from "./helpers/stack.js";
import { addUsage, linkedCustomer, reportsOf } from "./helpers/reporting.js";
import { deliver, waitForEvents } from "./helpers/stripe-webhooks.js";

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
// Longer than the default so a boundary up to ~1 h ago is still open; closed-period cases use 5 h.
const GRACE_MS = 3 * HOUR;

const stack = useStack({
  stripe: "reporting",
  env: { USAGE_PERIOD_GRACE_MS: String(GRACE_MS) },
  worker: false,
});
// Started by the test, for its metrics registry.
let worker: Awaited<ReturnType<Stack["startWorker"]>>;

beforeAll(async () => {
  worker = await stack.startWorker();
});

const seconds = (at: Date) => Math.floor(at.getTime() / 1000);
let eventClock = Math.floor(Date.now() / 1000) - 600;

/**
 * Applies the subscription's periods through signed webhooks, as Stripe renews it; `order` lists
 * the delivery order of the periods' events (created in period order), in order by default.
 */
async function subscribe(
  stripeCustomerId: string,
  periods: Array<[Date, Date]>,
  order = periods.map((_, i) => i),
): Promise<void> {
  const id = `sub_${stripeCustomerId}`;
  const built = periods.map(([start, end], i) => {
    const object = {
      id,
      object: "subscription",
      customer: stripeCustomerId,
      status: "active",
      items: {
        data: [
          {
            price: { id: "price_usage" },
            current_period_start: seconds(start),
            current_period_end: seconds(end),
          },
        ],
      },
    };
    const type = i === 0 ? "customer.subscription.created" : "customer.subscription.updated";
    return stack.stripe.buildEvent(type, object, { created: ++eventClock });
  });
  for (const i of order) {
    expect((await deliver(stack.url, built[i]!)).status).toBe(200);
    await waitForEvents(stack.db, [String(built[i]!.event.id)]);
  }
}

async function ingest(key: string, events: unknown[]) {
  const res = await fetch(`${stack.url}/v1/usage`, {
    method: "POST",
    headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
    body: JSON.stringify({ events }),
  });
  const body = (await res.json()) as { accepted: number; errors: Array<{ index: number; code: string }> };
  return { status: res.status, ...body };
}

const usageEvent = (id: string, at: Date) => ({
  id,
  model: "gpt-4o-mini",
  prompt_tokens: 10,
  completion_tokens: 5,
  timestamp: at.toISOString(),
});

const unreportable = async (reason: string) => {
  const metric = await worker.deps.metrics.registry
    .getSingleMetric("meterline_unreportable_reports_total")
    ?.get();
  return metric?.values.find((v) => v.labels.reason === reason)?.value ?? 0;
};

describe("billing periods", () => {
  it("cuts a report window at a period boundary inside the hour and stamps each event inside its period", async () => {
    const c = await linkedCustomer(stack.db, stack.stripe);
    // A boundary at :30:15 of an hour that has at least 2.5 minutes left before now.
    const hour = new Date(Math.floor((Date.now() - 33 * 60_000) / HOUR) * HOUR);
    const boundary = new Date(hour.getTime() + 30 * 60_000 + 15_000);
    await subscribe(c.stripeCustomerId, [
      [new Date(boundary.getTime() - 30 * DAY), boundary],
      [boundary, new Date(boundary.getTime() + 30 * DAY)],
    ]);
    await addUsage(stack.db, c.customerId, 1, 100, new Date(hour.getTime() + 1_000));
    await addUsage(stack.db, c.customerId, 1, 200, new Date(boundary.getTime() - 500));
    await addUsage(stack.db, c.customerId, 1, 400, boundary);
    await addUsage(stack.db, c.customerId, 1, 800, new Date(boundary.getTime() + 120_000));

    await flushUsage(stack.web, { customerId: c.customerId });
    await waitFor(async () => (await reportsOf(stack.db, c.customerId)).every((r) => r.status === "sent"), {
      what: "both reports sent",
    });

    const reports = await reportsOf(stack.db, c.customerId);
    expect(reports.map((r) => [r.window_start, r.window_end, Number(r.value)])).toEqual([
      [hour, boundary, 300],
      [boundary, new Date(hour.getTime() + HOUR), 1200],
    ]);
    const events = stack.stripe
      .meterEvents()
      .filter((e) => e.customer === c.stripeCustomerId)
      .sort((a, b) => a.timestamp - b.timestamp);
    expect(events.map((e) => [e.value, e.timestamp])).toEqual([
      [300, seconds(boundary) - 1],
      [1200, seconds(boundary) + 120],
    ]);
    expect(events[0]!.timestamp).toBeGreaterThanOrEqual(seconds(boundary) - 30 * 86_400);
  });

  it("keeps every period an event showed, whatever the delivery order; a late event does not move an end", async () => {
    const c = await linkedCustomer(stack.db, stack.stripe);
    const t = new Date(Math.floor(Date.now() / 1000) * 1000 - 10 * DAY);
    const first: [Date, Date] = [new Date(t.getTime() - 30 * DAY), t];
    const second: [Date, Date] = [t, new Date(t.getTime() + 30 * DAY)];
    // The renewal arrives before the creation; then a late copy of the first period with another end.
    await subscribe(c.stripeCustomerId, [first, second], [1, 0]);
    await subscribe(c.stripeCustomerId, [[first[0], new Date(t.getTime() - HOUR)]], [0]);
    eventClock -= 1_000; // the next event is older than every one applied so far
    await subscribe(c.stripeCustomerId, [[first[0], new Date(t.getTime() - 2 * HOUR)]], [0]);

    const periods = await stack
      .db("billing_periods")
      .where({ customer_id: c.customerId })
      .orderBy("period_start")
      .select("period_start", "period_end");
    expect(periods).toEqual([
      { period_start: first[0], period_end: new Date(t.getTime() - HOUR) },
      { period_start: second[0], period_end: second[1] },
    ]);
  });

  it("refuses, per event, usage older than Stripe's window less the reporting margin, or in an invoiced period", async () => {
    const c = await stack.customer();
    const stripeCustomerId = stack.stripe.createCustomer().id;
    await stack.db("customers").where({ id: c.customerId }).update({ stripe_customer_id: stripeCustomerId });
    const renewed = new Date(Date.now() - 5 * HOUR);
    await subscribe(stripeCustomerId, [
      [new Date(renewed.getTime() - 30 * DAY), renewed],
      [renewed, new Date(renewed.getTime() + 30 * DAY)],
    ]);
    const now = Date.now();
    const res = await ingest(c.key, [
      usageEvent("near-35-days", new Date(now - 35 * DAY + 30 * 60_000)),
      usageEvent("in-closed-period", new Date(now - 6 * HOUR)),
      usageEvent("current-period", new Date(now - 4 * HOUR)),
      usageEvent("before-the-subscription", new Date(now - 32 * DAY)),
    ]);
    expect(res.status).toBe(202);
    expect(res.accepted).toBe(2);
    expect(res.errors.map((e) => [e.index, e.code])).toEqual([
      [0, "timestamp_out_of_range"],
      [1, "period_closed"],
    ]);
  });

  it("surfaces usage that became too old before it was reported: failed report, dead letter, metric", async () => {
    const c = await linkedCustomer(stack.db, stack.stripe);
    // Accepted in time, then the flush (or Stripe) was down until Stripe's window closed on it.
    await addUsage(stack.db, c.customerId, 2, 50, new Date(Date.now() - 35 * DAY + 2 * 60_000));
    const before = await unreportable("too_old");
    const { reports } = await flushUsage(stack.web, { customerId: c.customerId });

    await waitFor(async () => (await reportsOf(stack.db, c.customerId))[0]?.status === "failed", {
      what: "report failed",
    });
    const letter = await waitFor(() =>
      stack
        .db("dead_letters")
        .where({ queue: QUEUE.stripeReport, job_id: reportJobId(reports[0]!.id) })
        .first(),
    );
    expect(letter.reason).toMatch(/35-day/);
    expect(await unreportable("too_old")).toBe(before + 1);
    expect(stack.stripe.totalFor(c.stripeCustomerId)).toBe(0);
  });

  it("surfaces usage of a period invoiced before it was reported instead of sending it", async () => {
    const c = await linkedCustomer(stack.db, stack.stripe);
    const renewed = new Date(Date.now() - 5 * HOUR);
    await subscribe(c.stripeCustomerId, [
      [new Date(renewed.getTime() - 30 * DAY), renewed],
      [renewed, new Date(renewed.getTime() + 30 * DAY)],
    ]);
    await addUsage(stack.db, c.customerId, 1, 70, new Date(renewed.getTime() - HOUR));
    const before = await unreportable("period_closed");
    const { reports } = await flushUsage(stack.web, { customerId: c.customerId });

    await waitFor(async () => (await reportsOf(stack.db, c.customerId))[0]?.status === "failed", {
      what: "report failed",
    });
    const letter = await waitFor(() =>
      stack
        .db("dead_letters")
        .where({ queue: QUEUE.stripeReport, job_id: reportJobId(reports[0]!.id) })
        .first(),
    );
    expect(letter.reason).toMatch(/invoiced/);
    expect(await unreportable("period_closed")).toBe(before + 1);
    expect(stack.stripe.totalFor(c.stripeCustomerId)).toBe(0);
  });
});
