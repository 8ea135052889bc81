import { UnrecoverableError, type Job } from "bullmq";
import type { Config } from "../src/config.js";
import type { Db } from "../src/platform/db.js";
import { PermanentError } from "../src/errors.js";
import type { Logger } from "../src/platform/logger.js";
import type { Metrics } from "../src/platform/metrics.js";
import { suspendIfOverdue } from "../src/billing/webhooks/customer-status.js";
import { applyStripeEvent, type StripeEventDeps } from "../src/billing/webhooks/stripe-event-handlers.js";
import { claimStripeEvent, finishStripeEvent } from "../src/billing/webhooks/stripe-events.js";
import { isLastAttempt } from "../src/queues/failures.js";
import type { Queues, StripeEventJobData } from "../src/queues/queues.js";

type Deps = StripeEventDeps & {
  db: Db;
  logger: Logger;
  queues: Pick<Queues, "stripeEvent">;
  config: Pick<Config, "stripeEvents">;
  metrics: Pick<Metrics, "webhookEvents" | "webhookTypeLabel">;
};

/** The suspension check of one past-due episode: one job per customer and start of the episode. */
export const suspendJobId = (customerId: string, since: Date) => `suspend-${customerId}-${since.getTime()}`;

/** Processes `stripe-event` jobs: apply a stored event, or suspend after the grace period. */
export function createStripeEventProcessor(deps: Deps) {
  const { db, logger, queues, config } = deps;

  async function apply(job: Job, eventId: string) {
    const stored = await claimStripeEvent(db, eventId);
    // Unknown, or already processed/ignored: a duplicate job changes nothing.
    if (!stored) return { eventId, skipped: true };
    const log = logger.child({ eventId, type: stored.type, attempt: job.attemptsMade + 1 });
    try {
      const outcome = await applyStripeEvent(deps, stored);
      if (outcome.pastDue) {
        const { customerId, since } = outcome.pastDue;
        const delay = Math.max(0, since.getTime() + config.stripeEvents.paymentGraceMs - Date.now());
        await queues.stripeEvent.add(
          "suspend",
          { kind: "suspend", customerId, since: since.toISOString() },
          { jobId: suspendJobId(customerId, since), delay },
        );
      }
      await finishStripeEvent(db, eventId, outcome.status, outcome.note ?? null);
      log.info({ status: outcome.status, note: outcome.note }, "stripe event applied");
      deps.metrics.webhookEvents.inc({
        type: deps.metrics.webhookTypeLabel(stored.type),
        outcome: outcome.status,
      });
      return { eventId, status: outcome.status };
    } catch (err) {
      const permanent = err instanceof PermanentError || err instanceof UnrecoverableError;
      const final = permanent || isLastAttempt(job);
      const message = err instanceof Error ? err.message : String(err);
      await finishStripeEvent(db, eventId, final ? "dead" : "received", message);
      deps.metrics.webhookEvents.inc({
        type: deps.metrics.webhookTypeLabel(stored.type),
        outcome: final ? "dead" : "retry",
      });
      throw err;
    }
  }

  return async (data: StripeEventJobData, job: Job) => {
    if (data.kind === "apply") return apply(job, data.eventId);
    const result = await suspendIfOverdue(
      db,
      data.customerId,
      new Date(data.since),
      config.stripeEvents.paymentGraceMs,
    );
    // Not due yet (clocks of Node and Postgres differ slightly): retry with backoff until it is.
    if (result === "not-due") throw new Error(`customer ${data.customerId} is not past its grace period yet`);
    if (result === "suspended")
      logger.warn({ customerId: data.customerId }, "customer suspended for non-payment");
    if (result === "nothing-owed")
      logger.warn(
        { customerId: data.customerId },
        "customer is past_due but owes no invoice on record: not suspended; set its status by hand (customers:update) if it should change",
      );
    return { customerId: data.customerId, result };
  };
}
