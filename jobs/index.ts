import { Worker, type Processor, type WorkerOptions } from "bullmq";
import type { Deps } from "../src/deps.js";
import { attachDeadLetters } from "../src/dead-letters.js";
import { QUEUE, queuePrefix, type QueueName } from "../src/queues.js";
import { createWorkerRedis, redisTlsOf } from "../src/redis.js";
import { onChatFailedForGood } from "./chat-failures.js";
import { createChatCompletionProcessor } from "./chat-completion.js";
import { observeJobs } from "./observe-jobs.js";
import { createFlushUsageProcessor } from "./flush-usage.js";
import { createReconcileUsageProcessor } from "./reconcile-usage.js";
import { createReportUsageProcessor, reportBackoffStrategy } from "./report-usage.js";
import { schedulesFor } from "./schedules.js";
import { startScheduleKeeper } from "./keep-schedules.js";
import { createPurgeChatsProcessor } from "./purge-chats.js";
import { createIngestUsageProcessor } from "./ingest-usage.js";
import { createApplyStripeEventProcessor } from "./apply-stripe-event.js";
import { startStripeEventSweeper } from "./sweep-stripe-events.js";
import { flushUsage } from "../src/billing/usage-flush.js";

export interface Workers {
  workers: Worker[];
  close(): Promise<void>;
}

/** Starts every queue processor of the worker process. */
export function startWorkers(deps: Deps): Workers {
  const { config, logger } = deps;
  const connection = createWorkerRedis(deps.redisUrl, redisTlsOf(config));
  connection.on("error", () => {});
  const workers: Worker[] = [];

  // One place that sets what every worker shares; `deadLetters` marks queues whose final failures
  // must be recorded durably and re-drivable.
  const start = (
    name: QueueName,
    processor: Processor,
    options: Partial<WorkerOptions> & { deadLetters?: boolean } = {},
  ): Worker => {
    const { deadLetters, ...rest } = options;
    const worker = new Worker(name, processor, {
      connection,
      prefix: queuePrefix(config.queuePrefix, name),
      lockDuration: config.worker.lockMs,
      stalledInterval: config.worker.stalledIntervalMs,
      ...rest,
    });
    worker.on("error", (err) => logger.error({ err, queue: name }, "worker error"));
    worker.on("failed", (job, err) => {
      if (!job) return;
      const final = job.finishedOn !== undefined;
      // Final failures of dead-letter queues are logged by the dead-letter recorder.
      if (final && deadLetters) return;
      logger[final ? "error" : "warn"](
        { queue: name, jobId: job.id, attemptsMade: job.attemptsMade, err: err.message },
        final ? "job failed for good" : "job failed, will retry",
      );
    });
    if (deadLetters) attachDeadLetters(worker, deps.db, logger);
    observeJobs(worker, name, deps.metrics, deadLetters === true);
    workers.push(worker);
    return worker;
  };

  const chat = start(QUEUE.chat, createChatCompletionProcessor(deps), {
    concurrency: config.chat.concurrency,
  });
  onChatFailedForGood(chat, deps);
  start(QUEUE.usage, createIngestUsageProcessor(deps), {
    concurrency: config.usage.concurrency,
    deadLetters: true,
  });

  const stripe = deps.stripe;
  if (stripe) {
    start(QUEUE.usageFlush, createFlushUsageProcessor(deps));
    start(QUEUE.stripeReport, createReportUsageProcessor({ ...deps, stripe }), {
      deadLetters: true,
      concurrency: config.reporting.concurrency,
      // `limiter` lets a 429 pause the whole queue (queue.rateLimit) without spending attempts.
      limiter: { max: 1_000, duration: 1_000 },
      // A stall is a dead or frozen worker, not a refusal by Stripe, and a resend is safe (identifier
      // + Idempotency-Key): BullMQ's default of one stall would fail a report after two crashes.
      maxStalledCount: config.reporting.attempts,
      settings: { backoffStrategy: reportBackoffStrategy(config) },
    });
    start(QUEUE.reconcile, createReconcileUsageProcessor({ ...deps, stripe }));
  } else {
    logger.warn("STRIPE_SECRET_KEY is not set: usage stays in the ledger and is not reported to Stripe");
  }

  if (config.stripeEvents.refetch && !stripe) {
    logger.warn("STRIPE_WEBHOOK_REFETCH needs STRIPE_SECRET_KEY: applying webhook events from their payload");
  }
  start(
    QUEUE.stripeEvent,
    createApplyStripeEventProcessor({
      ...deps,
      stripe: config.stripeEvents.refetch ? stripe : undefined,
      // invoice.created: report the customer's usage before Stripe finalizes the invoice.
      flushCustomer: stripe
        ? async (customerId) => {
            await flushUsage(deps, { customerId });
          }
        : undefined,
    }),
    { deadLetters: true, concurrency: config.stripeEvents.concurrency },
  );
  start(QUEUE.maintenance, createPurgeChatsProcessor(deps));
  const sweeper = startStripeEventSweeper(deps);
  const schedules = startScheduleKeeper(deps, schedulesFor(stripe !== undefined));

  return {
    workers,
    async close() {
      sweeper.stop();
      await schedules.stop();
      await Promise.all(workers.map((w) => w.close()));
      connection.disconnect();
    },
  };
}
