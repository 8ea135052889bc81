import type { Config } from "../../config.js";
import type { Db } from "../../platform/db.js";
import type { Logger } from "../../platform/logger.js";
import { listWaitingStripeEvents } from "./stripe-events.js";
import type { Queues } from "../../queues/queues.js";

type Deps = {
  db: Db;
  logger: Logger;
  queues: Pick<Queues, "stripeEvent">;
  config: Pick<Config, "stripeEvents">;
};

/**
 * Enqueues stored Stripe events whose job never reached Redis (the intake answers 200 once the
 * event is in Postgres, even when Redis is down). A timer in every worker process rather than a
 * BullMQ scheduler, so it keeps running through a Redis outage. Several workers sweeping at once
 * is harmless: the job id is the event id, so an event whose job exists is not added twice.
 */
export function startStripeEventSweeper(deps: Deps): { stop(): void } {
  const { db, logger, queues, config } = deps;
  let running = false;
  const sweep = async (): Promise<void> => {
    const ids = await listWaitingStripeEvents(db, config.stripeEvents.sweepMs);
    if (!ids.length) return;
    await queues.stripeEvent.addBulk(
      ids.map((id) => ({
        name: "apply",
        data: { kind: "apply" as const, eventId: id },
        opts: { jobId: id },
      })),
    );
    logger.info({ count: ids.length }, "stripe events enqueued by the sweeper");
  };
  const timer = setInterval(() => {
    if (running) return;
    running = true;
    sweep()
      .catch((err: Error) =>
        logger.warn({ err: err.message }, "stripe event sweep failed; next tick retries"),
      )
      .finally(() => {
        running = false;
      });
  }, config.stripeEvents.sweepMs);
  timer.unref();
  return { stop: () => clearInterval(timer) };
}
