import { DelayedError, RateLimitError, UnrecoverableError, type Job, type Queue } from "bullmq";
import type { Config } from "../src/config.js";
import type { Db } from "../src/platform/db.js";
import { RetryableError } from "../src/errors.js";
import type { Logger } from "../src/platform/logger.js";
import type { Metrics } from "../src/platform/metrics.js";
import { isLastAttempt } from "../src/queues/failures.js";
import type { JobRun } from "../src/queues/processor.js";
import type { StripeReportJobData } from "../src/queues/queues.js";
import { createReportBatchProcessor, streamEvent } from "./stripe-report-batch.js";
import type { RedisClient } from "../src/platform/redis.js";
import { createMeterLock, type MeterLock } from "../src/billing/reporting/meter-lock.js";
import { unreportable } from "../src/billing/reporting/report-deadlines.js";
import type { StripeClient } from "../src/billing/reporting/stripe-client.js";
import { classifyMeterEventError, describeStripeError } from "../src/billing/reporting/stripe-errors.js";
import { checkBeforeSend, type BeforeSend } from "../src/billing/reporting/report-resend.js";
import { createMeterEventStream, type MeterEventStream } from "../src/billing/reporting/meter-stream.js";
import {
  markReportSent,
  recordReportAttempt,
  reportForSending,
  reportIdempotencyKey,
} from "../src/billing/reporting/usage-reports.js";

type Deps = {
  db: Db;
  redis: RedisClient;
  logger: Logger;
  config: Config;
  stripe: Pick<StripeClient, "billing" | "v2">;
  queues: { stripeReport: Pick<Queue<StripeReportJobData>, "rateLimit" | "addBulk"> };
  metrics: Pick<Metrics, "stripeReports" | "unreportableReports">;
};

/** Capped exponential backoff with jitter for `stripe-report` retries: seconds at first, hours later. */
export function reportBackoffStrategy(config: Config) {
  return (attemptsMade: number): number => {
    const { backoffMs, backoffMaxMs } = config.reporting;
    const ceiling = Math.min(backoffMaxMs, backoffMs * 2 ** Math.min(30, Math.max(0, attemptsMade - 1)));
    return Math.round(ceiling / 2 + (Math.random() * ceiling) / 2);
  };
}

/**
 * The `stripe-report` processor: a batch job goes as one v2 meter event stream request
 * (stripe-report-batch.ts), a single report as one meter event. One stream session and one meter
 * lock serve both.
 */
export function createStripeReportProcessor(deps: Deps) {
  const { config } = deps;
  const lock = createMeterLock(deps.redis, config.queuePrefix);
  // The SDK reconnects once after a dropped connection even without retries: two timeouts + margin.
  const lockTtlMs = 3 * config.stripe.timeoutMs + 5_000;
  // One session per process, opened on the first streamed report.
  const stream = createMeterEventStream(deps);
  const single = createSingleReportProcessor({ ...deps, stream, lock, lockTtlMs });
  const batch = createReportBatchProcessor({ ...deps, stream, lock, lockTtlMs });
  return (data: StripeReportJobData, job: Job, run: JobRun) =>
    "batchId" in data ? batch(data, job, run) : single(data, job, run);
}

/**
 * Sends one report as one meter event: a v1 call, or under REPORTING_METER_API=v2 a stream request
 * of one event. Delivered (or already delivered: Stripe's duplicate identifier) → `sent`; 429 → the
 * queue pauses and the job waits without spending an attempt; 5xx/network → retried with backoff;
 * any other 4xx → `failed`, a dead letter and the job kept in the failed set. At most one call per
 * Stripe customer and meter is in flight, across processes.
 */
function createSingleReportProcessor(
  deps: Deps & { stream: MeterEventStream; lock: MeterLock; lockTtlMs: number },
) {
  const { db, config, stream, lock, lockTtlMs } = deps;

  return async ({ reportId }: { reportId: number }, job: Job, { token }: JobRun) => {
    const found = await reportForSending(db, reportId);
    if (!found) throw new UnrecoverableError(`no usage report ${reportId}`);
    const { report, currentStripeCustomerId: stripeCustomerId } = found;
    const log = deps.logger.child({ reportId: report.id, jobId: job.id, customerId: report.customerId });
    if (report.status === "sent") return { status: "sent", already: true };

    const fail = async (message: string): Promise<never> => {
      await recordReportAttempt(db, report.id, message, "failed");
      throw new UnrecoverableError(message);
    };
    // Its value is a placeholder 0: sending it would mark its rows billed. Retrying re-dead-letters it.
    if (report.quarantineReason) return fail(report.lastError ?? `quarantined: ${report.quarantineReason}`);
    if (!stripeCustomerId) return fail("the customer has no Stripe customer id");
    const refusal = unreportable(report, new Date(), config.reporting.periodGraceMs);
    if (refusal) {
      deps.metrics.unreportableReports.inc({ reason: refusal.reason });
      log.error(
        {
          ...refusal,
          value: report.value,
          eventAt: report.eventAt,
          stripeCustomerId,
          periodEnd: report.periodEnd,
        },
        `USAGE NOT REPORTED: report ${report.id} (${report.value} ${report.eventName}) is ${refusal.message}; ` +
          `bill it by hand: an invoice item for ${stripeCustomerId} at the meter's price, then leave the report failed`,
      );
      return fail(`${refusal.message}: not sent; bill this usage by hand`);
    }

    const held = await lock.acquire(stripeCustomerId, report.eventName, lockTtlMs);
    if (!held) {
      // Another call for this customer and meter is in flight: come back shortly, attempt unspent.
      await job.moveToDelayed(Date.now() + 50 + Math.round(Math.random() * 200), token);
      throw new DelayedError();
    }
    let error: unknown;
    let check: BeforeSend | undefined;
    try {
      // Past Stripe's 24-hour dedupe window a resend could count twice: Stripe's figures decide.
      check = await checkBeforeSend(deps, report, stripeCustomerId);
      if (check.action === "send" && config.reporting.meterApi === "v2")
        await stream.send([streamEvent({ report, stripeCustomerId })]);
      else if (check.action === "send")
        await deps.stripe.billing.meterEvents.create(
          {
            event_name: report.eventName,
            payload: { stripe_customer_id: stripeCustomerId, value: String(report.value) },
            identifier: report.identifier,
            timestamp: Math.floor(report.eventAt.getTime() / 1000),
          },
          // BullMQ owns retries and backoff; the key makes a resent call replay, not repeat.
          {
            idempotencyKey: reportIdempotencyKey(report.identifier, stripeCustomerId),
            maxNetworkRetries: 0,
          },
        );
    } catch (err) {
      error = err;
    } finally {
      await lock
        .release(stripeCustomerId, report.eventName, held)
        .catch((err: unknown) => log.warn({ err }, "could not release the meter lock; it expires by itself"));
    }

    if (check?.action === "ambiguous") {
      log.error(check.figures, `REPORT NEEDS A CHECK: not resent, ${check.message}`);
      return fail(check.message);
    }
    const counted = check?.action === "counted";
    const outcome = error !== undefined ? classifyMeterEventError(error) : counted ? "duplicate" : "sent";
    deps.metrics.stripeReports.inc({ outcome });
    if (outcome === "sent" || outcome === "duplicate") {
      await markReportSent(db, report.id, stripeCustomerId);
      log.info(
        { value: report.value, duplicate: outcome === "duplicate", counted },
        counted
          ? "usage report already counted by Stripe: marked sent, not resent"
          : "usage report sent to Stripe",
      );
      return { status: "sent", duplicate: outcome === "duplicate", ...(counted && { counted }) };
    }
    const message = describeStripeError(error);
    if (outcome === "rate-limited") {
      await recordReportAttempt(db, report.id, message, "pending");
      const ms = config.reporting.rateLimitMs;
      await deps.queues.stripeReport.rateLimit(ms + Math.round(Math.random() * ms));
      throw new RateLimitError();
    }
    if (outcome === "permanent") return fail(message);
    await recordReportAttempt(db, report.id, message, isLastAttempt(job) ? "failed" : "pending");
    throw new RetryableError(message, { cause: error });
  };
}
