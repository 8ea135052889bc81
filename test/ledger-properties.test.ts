import { UnrecoverableError, type Job, type Processor, type Queue } from "bullmq";
import fc from "fast-check";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createStripeReportProcessor } from "../jobs/stripe-report.js";
import { createStripeClient } from "../src/billing/reporting/stripe-client.js";
import { flushUsage } from "../src/billing/reporting/usage-flush.js";
import { createLogger } from "../src/platform/logger.js";
import { createMetrics } from "../src/platform/metrics.js";
import { QUEUE, reportJobId, type StripeReportJobData } from "../src/queues/queues.js";
import { wrapProcessor } from "../src/queues/processor.js";
import type { Config } from "../src/config.js";
import { useStack } from "./helpers/stack.js";
import { addUsage, ledgerTotal, linkedCustomer } from "./helpers/reporting.js";

// The ledger → flush → report chain, driven step by step so that fast-check chooses the
// interleaving: usage inserts, flushes (one customer or all, alone or two at once), and report
// attempts that Stripe answers with success, 5xx, 429, a dropped request, a lost answer (handled,
// then the socket dies) or a duplicate-identifier 400 — plus re-deliveries of a report job, alone
// or two at once. Whatever the order, once the jobs have drained every row must sit in exactly one
// sent report and Stripe must count exactly the ledger, per customer.

const CUSTOMERS = 3;
const METER_PATH = "POST /v1/billing/meter_events";
const OUTCOMES = ["sent", "5xx", "429", "drop", "lost-answer", "duplicate"] as const;
type Outcome = (typeof OUTCOMES)[number];

type Step =
  | { kind: "insert"; customer: number; tokens: number; hoursAgo: number }
  | { kind: "flush"; customer: number | null }
  | { kind: "flush-twice" }
  | { kind: "report"; pick: number; outcome: Outcome }
  | { kind: "report-twice"; pick: number };

const step: fc.Arbitrary<Step> = fc.oneof(
  { weight: 4, arbitrary: insertStep() },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant("flush" as const),
      customer: fc.option(fc.nat(CUSTOMERS - 1), { nil: null }),
    }),
  },
  { weight: 1, arbitrary: fc.constant({ kind: "flush-twice" as const }) },
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant("report" as const),
      pick: fc.nat(),
      outcome: fc.constantFrom(...OUTCOMES),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("report-twice" as const), pick: fc.nat() }) },
);

function insertStep(): fc.Arbitrary<Step> {
  return fc.record({
    kind: fc.constant("insert" as const),
    customer: fc.nat(CUSTOMERS - 1),
    tokens: fc.integer({ min: 10, max: 1_000_000 }), // addUsage splits 10 off as completion,
    hoursAgo: fc.nat(3),
  });
}

// No worker: the test runs the flush and each report job itself, in the order fast-check picks.
const stack = useStack({ stripe: "reporting", worker: false });
let redis: Redis;
let config: Config;
let sendReport: Processor;
let flushDeps: Parameters<typeof flushUsage>[0];

beforeAll(async () => {
  redis = new Redis(stack.config.redisUrl!, { maxRetriesPerRequest: null });
  config = stack.config;
  const logger = createLogger("silent", "ledger-properties");
  // The jobs are run by hand below, so the queue is only what the flush and the processor touch.
  const stripeReport = {
    addBulk: async () => [],
    rateLimit: async () => {},
  } as unknown as Queue<StripeReportJobData>;
  const metrics = createMetrics(() => []);
  flushDeps = { db: stack.db, config, logger, queues: { stripeReport }, metrics };
  sendReport = wrapProcessor(
    QUEUE.stripeReport,
    createStripeReportProcessor({
      db: stack.db,
      redis,
      logger,
      config,
      stripe: createStripeClient(config)!,
      queues: { stripeReport },
      metrics,
    }),
  );
});
afterAll(async () => {
  redis?.disconnect();
});

/** One delivery of a report's job, as a worker would run it; returns how it ended. */
async function deliver(reportId: number): Promise<string> {
  const job = {
    id: reportJobId(reportId),
    data: { reportId },
    attemptsMade: 0,
    opts: { attempts: config.reporting.attempts },
    moveToDelayed: async () => {},
  } as unknown as Job<StripeReportJobData>;
  try {
    await sendReport(job);
    return "done";
  } catch (err) {
    // A permanent failure would leave usage unbilled: none of the outcomes here may cause one.
    if (err instanceof UnrecoverableError) throw err;
    return (err as Error).name;
  }
}

/** Makes Stripe answer the next meter-event call with `outcome`. */
async function arrange(outcome: Outcome, reportId: number, stripeCustomerId: string): Promise<void> {
  if (outcome === "5xx") stack.stripe.failNext(1, 500, { path: METER_PATH });
  if (outcome === "429") stack.stripe.failNext(1, 429, { path: METER_PATH });
  if (outcome === "drop") stack.stripe.failNext(1, "drop", { path: METER_PATH });
  if (outcome === "lost-answer") stack.stripe.failNext(1, "drop-after", { path: METER_PATH });
  if (outcome === "duplicate") {
    // An earlier attempt landed under another Idempotency-Key (say, before a worker crash lost its
    // answer): Stripe now refuses the identifier with its duplicate 400.
    const report = await stack.db("usage_reports").where({ id: reportId }).first();
    await createStripeClient(config)!
      .billing.meterEvents.create({
        event_name: report.event_name,
        payload: { stripe_customer_id: stripeCustomerId, value: String(report.value) },
        identifier: report.identifier,
        timestamp: Math.floor(new Date(report.event_at).getTime() / 1000),
      })
      .catch(() => {}); // already recorded by an earlier step: nothing more to arrange
  }
}

type Run = Array<{ customerId: string; stripeCustomerId: string }>;

async function reportIdsOf(run: Run, opts: { open?: boolean } = {}): Promise<number[]> {
  const query = stack
    .db("usage_reports")
    .whereIn(
      "customer_id",
      run.map((c) => c.customerId),
    )
    .orderBy("id");
  if (opts.open) query.whereNot({ status: "sent" });
  return query.pluck("id");
}

async function apply(run: Run, s: Step): Promise<void> {
  if (s.kind === "insert") {
    // Whole hours back give several report windows, never before this month (an older period
    // would be past its invoice and refused).
    const monthStart = new Date(Date.UTC(new Date().getUTCFullYear(), new Date().getUTCMonth(), 1));
    const at = new Date(Math.max(Date.now() - s.hoursAgo * 3_600_000, monthStart.getTime()));
    return addUsage(stack.db, run[s.customer]!.customerId, 1, s.tokens, at);
  }
  if (s.kind === "flush") {
    const customerId = s.customer === null ? undefined : run[s.customer]!.customerId;
    await flushUsage(flushDeps, customerId ? { customerId } : {});
    return;
  }
  if (s.kind === "flush-twice") {
    await Promise.all([flushUsage(flushDeps), flushUsage(flushDeps)]);
    return;
  }
  // Mostly a report still open, where Stripe's answer decides something; else a re-delivery.
  const open = await reportIdsOf(run, { open: true });
  const ids = open.length > 0 && s.pick % 4 !== 0 ? open : await reportIdsOf(run);
  if (ids.length === 0) return;
  const reportId = ids[s.pick % ids.length]!;
  if (s.kind === "report-twice") {
    await Promise.all([deliver(reportId), deliver(reportId)]);
    return;
  }
  const report = await stack.db("usage_reports").where({ id: reportId }).first();
  const owner = run.find((c) => c.customerId === report.customer_id)!;
  await arrange(s.outcome, reportId, owner.stripeCustomerId);
  try {
    await deliver(reportId);
  } finally {
    stack.stripe.clearFaults(); // a fault the call never consumed (report already sent) must not linger
  }
}

/** What the scheduler, the sweeper and BullMQ's retries do eventually, with Stripe healthy. */
async function drain(run: Run): Promise<void> {
  await flushUsage(flushDeps);
  for (let round = 0; round < 5; round++) {
    const open = await reportIdsOf(run, { open: true });
    if (open.length === 0) return;
    for (const id of open) await deliver(id);
  }
}

async function checkInvariants(run: Run): Promise<void> {
  const customerIds = run.map((c) => c.customerId);
  const unreported = await stack
    .db("usage_events")
    .whereIn("customer_id", customerIds)
    .whereNull("report_id")
    .count({ n: "*" })
    .first();
  expect(Number(unreported?.n)).toBe(0);

  const reports = await stack.db("usage_reports").whereIn("customer_id", customerIds);
  const sums: Array<{ report_id: string; total: string; rows: string }> = await stack
    .db("usage_events")
    .whereIn("customer_id", customerIds)
    .groupBy("report_id")
    .select("report_id", stack.db.raw("sum(billable_tokens) AS total, count(*) AS rows"));
  const byReport = new Map(sums.map((s) => [Number(s.report_id), Number(s.total)]));
  for (const r of reports) {
    expect(r.status).toBe("sent");
    expect(byReport.get(Number(r.id))).toBe(Number(r.value)); // no empty report, no row counted twice
  }

  const stripeIds = new Set(run.map((c) => c.stripeCustomerId));
  const events = stack.stripe.meterEvents().filter((e) => stripeIds.has(e.customer));
  expect(events.map((e) => e.identifier).sort()).toEqual(reports.map((r) => r.identifier).sort());
  for (const c of run) {
    expect(stack.stripe.totalFor(c.stripeCustomerId, config.stripe.meterEventName)).toBe(
      await ledgerTotal(stack.db, c.customerId),
    );
  }
  expect(stack.stripe.concurrencyViolations).toBe(0);
}

describe("ledger → flush → report invariants (fast-check)", () => {
  it("any interleaving of inserts, flushes, Stripe outcomes and re-deliveries ends with every row in exactly one sent report and Stripe = ledger", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(step, { minLength: 1, maxLength: 30 }), async (steps) => {
        const run: Run = [];
        for (let i = 0; i < CUSTOMERS; i++) run.push(await linkedCustomer(stack.db, stack.stripe));
        for (const s of steps) await apply(run, s);
        await drain(run);
        await checkInvariants(run);
      }),
      { numRuns: 40 },
    );
  }, 120_000);
});
