import { DelayedError, RateLimitError, type Job, type Queue } from "bullmq";
import type { Config } from "../src/config.js";
import type { Db } from "../src/platform/db.js";
import { RetryableError } from "../src/errors.js";
import type { Logger } from "../src/platform/logger.js";
import type { Metrics } from "../src/platform/metrics.js";
import { isLastAttempt } from "../src/queues/failures.js";
import type { JobRun } from "../src/queues/processor.js";
import type { ReportBatchJobData, StripeReportJobData } from "../src/queues/queues.js";
import {
  acquireAll,
  releaseAll,
  type MeterKey,
  type MeterLock,
} from "../src/billing/reporting/meter-lock.js";
import type { MeterEventStream } from "../src/billing/reporting/meter-stream.js";
import { enqueueReports } from "../src/billing/reporting/report-batches.js";
import { unreportable } from "../src/billing/reporting/report-deadlines.js";
import { markFirstAttempts } from "../src/billing/reporting/report-resend.js";
import { classifyMeterEventError, describeStripeError } from "../src/billing/reporting/stripe-errors.js";
import {
  markReportsSent,
  recordReportAttempts,
  reportsForSending,
  type ReportForSending,
} from "../src/billing/reporting/usage-reports.js";

type Deps = {
  db: Db;
  logger: Logger;
  config: Config;
  queues: { stripeReport: Pick<Queue<StripeReportJobData>, "rateLimit" | "addBulk"> };
  metrics: Pick<Metrics, "stripeReports">;
  stream: MeterEventStream;
  lock: MeterLock;
  lockTtlMs: number;
};

type Sendable = { report: ReportForSending["report"]; stripeCustomerId: string };

/**
 * Sends a batch of up to 100 reports as one v2 meter event stream request, each event under its
 * report's identifier (a resend is deduplicated by Stripe). It holds the meter lock of every
 * customer and meter in the request for the whole call. Whatever a plain send cannot settle — a
 * quarantined, unlinked or overdue report, a first attempt past Stripe's dedupe window, a request
 * Stripe refused as a whole (4xx), REPORTING_METER_API=v1 — goes to a job of its own, where the
 * single-report processor settles it exactly as it settles any report. Otherwise the request's
 * outcome is each report's: all sent; or a 429 (the queue pauses, no attempt spent); or a 5xx or
 * network error, recorded on every report and retried with backoff, already-sent reports left out.
 */
export function createReportBatchProcessor(deps: Deps) {
  const { db, config } = deps;

  return async ({ batchId, reportIds }: ReportBatchJobData, job: Job, { token }: JobRun) => {
    const log = deps.logger.child({ batchId, jobId: job.id });
    const unsent = (await reportsForSending(db, reportIds)).filter((f) => f.report.status !== "sent");
    if (unsent.length === 0) return { status: "sent", already: true };
    const handOff = (found: Array<{ report: { id: number } }>) =>
      enqueueReports(
        deps.queues.stripeReport,
        found.map((f) => ({ id: f.report.id })),
      );
    // An operator chose v1 after this batch was made: each report becomes a v1 call of its own.
    if (config.reporting.meterApi === "v1") {
      await handOff(unsent);
      return { status: "handed-off", reports: unsent.length };
    }

    const now = new Date();
    const ready: Sendable[] = [];
    const apart: ReportForSending[] = [];
    for (const f of unsent) {
      const { report, currentStripeCustomerId: stripeCustomerId } = f;
      if (
        stripeCustomerId &&
        !report.quarantineReason &&
        !unreportable(report, now, config.reporting.periodGraceMs)
      )
        ready.push({ report, stripeCustomerId });
      else apart.push(f);
    }
    await handOff(apart);
    if (ready.length === 0) return { status: "handed-off", reports: apart.length };

    const held = await acquireAll(deps.lock, meterKeys(ready), deps.lockTtlMs);
    if (!held) {
      // A call for one of these customers and meters is in flight: come back shortly, attempt unspent.
      await job.moveToDelayed(Date.now() + 50 + Math.round(Math.random() * 200), token);
      throw new DelayedError();
    }
    // Until the first attempts are recorded every report counts as attempted: a failure there is
    // each report's retryable error, never a batch that completes with its reports still pending.
    let toSend: Sendable[] = ready;
    let checked: Sendable[] = [];
    let error: unknown;
    try {
      const ages = await markFirstAttempts(
        db,
        ready.map((r) => r.report.id),
      );
      // Past Stripe's 24-hour dedupe window a resend could count twice: the single job asks Stripe.
      const fresh = (r: Sendable) => (ages.get(r.report.id) ?? 0) <= config.reporting.resendCheckAfterMs;
      toSend = ready.filter(fresh);
      checked = ready.filter((r) => !fresh(r));
      await deps.stream.send(toSend.map(streamEvent));
    } catch (err) {
      error = err;
    } finally {
      await releaseAll(deps.lock, held).catch((err: unknown) =>
        log.warn({ err }, "could not release the meter locks; they expire by themselves"),
      );
    }
    if (toSend.length === 0) {
      await handOff(checked);
      return { status: "handed-off", reports: apart.length + checked.length };
    }

    const ids = toSend.map((r) => r.report.id);
    const outcome = error === undefined ? "sent" : classifyMeterEventError(error);
    deps.metrics.stripeReports.inc({ outcome });
    if (outcome === "sent" || outcome === "duplicate") {
      await markReportsSent(
        db,
        toSend.map((r) => ({ id: r.report.id, stripeCustomerId: r.stripeCustomerId })),
      );
      await handOff(checked);
      log.info(
        { reports: toSend.length, value: toSend.reduce((n, r) => n + r.report.value, 0) },
        "usage reports sent to Stripe in one meter event stream request",
      );
      return { status: "sent", reports: toSend.length, handedOff: apart.length + checked.length };
    }
    await handOff(checked);
    const message = describeStripeError(error);
    if (outcome === "rate-limited") {
      await recordReportAttempts(db, ids, message, "pending");
      const ms = config.reporting.rateLimitMs;
      await deps.queues.stripeReport.rateLimit(ms + Math.round(Math.random() * ms));
      throw new RateLimitError();
    }
    if (outcome === "permanent") {
      // Refused as a whole: each report on its own request learns whether it is the one at fault.
      await recordReportAttempts(db, ids, message, "pending");
      await handOff(toSend);
      log.warn(
        { reports: ids.length, err: message },
        "Stripe refused a meter event stream request: reports sent one by one",
      );
      return { status: "handed-off", reports: ids.length };
    }
    await recordReportAttempts(db, ids, message, isLastAttempt(job) ? "failed" : "pending");
    throw new RetryableError(message, { cause: error });
  };
}

/** The distinct customers and meters of a request: one lock each. */
function meterKeys(reports: readonly Sendable[]): MeterKey[] {
  const keys = new Map<string, MeterKey>();
  for (const { report, stripeCustomerId } of reports)
    keys.set(`${report.eventName}\u0000${stripeCustomerId}`, {
      stripeCustomerId,
      eventName: report.eventName,
    });
  return [...keys.values()];
}

/** A report as a stream event: the report's identifier, its value as a string, an ISO timestamp. */
export function streamEvent({ report, stripeCustomerId }: Sendable) {
  return {
    event_name: report.eventName,
    payload: { stripe_customer_id: stripeCustomerId, value: String(report.value) },
    identifier: report.identifier,
    timestamp: report.eventAt.toISOString(),
  };
}
