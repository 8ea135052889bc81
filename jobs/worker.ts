import { Worker, type WorkerOptions } from "bullmq";
import type { Deps } from "../src/deps.js";
import { attachDeadLetters } from "../src/queues/dead-letters.js";
import { QUEUE, queuePrefix, type QueueName } from "../src/queues/queues.js";
import { createWorkerRedis, reconnectQuietly, redisTlsOf } from "../src/platform/redis.js";
import { createChatProcessor, onChatFailedForGood } from "./chat.js";
import { replyToWaiters } from "../src/queues/chat-replies.js";
import { observeJobs } from "../src/queues/observe-jobs.js";
import { onFailure } from "../src/queues/failures.js";
import { wrapProcessor, type JobProcessor } from "../src/queues/processor.js";
import { createUsageFlushProcessor } from "./usage-flush.js";
import { createReconcileProcessor } from "./reconcile.js";
import { createStripeReportProcessor, reportBackoffStrategy } from "./stripe-report.js";
import { schedulesFor } from "../src/queues/schedules.js";
import { startScheduleKeeper } from "../src/queues/keep-schedules.js";
import { createMaintenanceProcessor } from "./maintenance.js";
import { createUsageProcessor } from "./usage.js";
import { createStripeEventProcessor } from "./stripe-event.js";
import { createWebhookDeliveryProcessor, webhookBackoffStrategy } from "./webhook-delivery.js";
import { startStripeEventSweeper } from "../src/billing/webhooks/event-sweeper.js";
import { flushUsage } from "../src/billing/reporting/usage-flush.js";
import { ensurePartitions } from "../src/billing/ledger/partitions.js";
import { loadConfigOrExit } from "../src/config.js";
import { evaluateBalanceAlerts } from "../src/billing/alerts/evaluate.js";
import { createDeps } from "../src/deps.js";
import { startMetricsServer } from "../src/platform/metrics-server.js";
import { loadTokenizer } from "../src/llm/token-counter.js";
import { warnAboutRedis } from "../src/platform/redis-checks.js";
import { shutdownWorkers } from "../src/queues/shutdown.js";
import { onShutdownSignal } from "../src/platform/shutdown-signal.js";
import { realpathSync } from "node:fs";
import { pathToFileURL } from "node:url";

export interface Workers {
  workers: Worker[];
  close(): Promise<void>;
}

/** Starts every queue processor of the worker process. */
export function startWorkers(deps: Deps): Workers {
  const { config, logger } = deps;
  const connection = createWorkerRedis(config.redisUrl, redisTlsOf(config));
  reconnectQuietly(connection);
  const workers: Worker[] = [];

  // One place that sets what every worker shares, payload parsing and error translation included;
  // `deadLetters` marks queues whose final failures must be recorded durably and re-drivable.
  const start = <Q extends QueueName>(
    name: Q,
    processor: JobProcessor<Q>,
    options: Partial<WorkerOptions> & { deadLetters?: boolean } = {},
  ): Worker => {
    const { deadLetters, ...rest } = options;
    const worker = new Worker(name, wrapProcessor(name, processor), {
      connection,
      prefix: queuePrefix(config.queuePrefix, name),
      lockDuration: config.worker.lockMs,
      stalledInterval: config.worker.stalledIntervalMs,
      ...rest,
    });
    worker.on("error", (err) => logger.error({ err, queue: name }, "worker error"));
    onFailure(worker, (job, err, final) => {
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

  const chat = start(QUEUE.chat, createChatProcessor(deps), {
    concurrency: config.chat.concurrency,
  });
  onChatFailedForGood(chat, deps);
  replyToWaiters(chat, deps.redis, logger);
  start(QUEUE.usage, createUsageProcessor(deps), {
    concurrency: config.usage.concurrency,
    deadLetters: true,
  });

  const stripe = deps.stripe;
  if (stripe) {
    start(QUEUE.usageFlush, createUsageFlushProcessor(deps));
    start(QUEUE.stripeReport, createStripeReportProcessor({ ...deps, stripe }), {
      deadLetters: true,
      concurrency: config.reporting.concurrency,
      // `limiter` lets a 429 pause the whole queue (queue.rateLimit) without spending attempts; its
      // max is Stripe's live-mode rate: 1,000 v1 calls/s (a single report's job), 10,000 events/s
      // through the v2 stream (a batch job carries up to 100). Under auto, singles are v1 calls.
      limiter: { max: config.reporting.meterApi === "v2" ? 100 : 1_000, duration: 1_000 },
      // A stall is a dead or frozen worker, not a refusal by Stripe, and a resend is safe (identifier
      // + Idempotency-Key): BullMQ's default of one stall would fail a report after two crashes.
      maxStalledCount: config.reporting.attempts,
      settings: { backoffStrategy: reportBackoffStrategy(config) },
    });
    start(QUEUE.reconcile, createReconcileProcessor({ ...deps, stripe }));
  } else {
    logger.warn("STRIPE_SECRET_KEY is not set: usage stays in the ledger and is not reported to Stripe");
  }

  if (config.stripeEvents.refetch && !stripe) {
    logger.warn("STRIPE_WEBHOOK_REFETCH needs STRIPE_SECRET_KEY: applying webhook events from their payload");
  }
  start(
    QUEUE.stripeEvent,
    createStripeEventProcessor({
      ...deps,
      stripe: config.stripeEvents.refetch ? stripe : undefined,
      // invoice.created: report the customer's usage before Stripe finalizes the invoice.
      flushCustomer: stripe
        ? async (customerId) => {
            await flushUsage(deps, { customerId });
          }
        : undefined,
      balanceChanged: (customerId) => evaluateBalanceAlerts(deps, customerId),
    }),
    { deadLetters: true, concurrency: config.stripeEvents.concurrency },
  );
  start(QUEUE.maintenance, createMaintenanceProcessor(deps));
  start(QUEUE.webhookDelivery, createWebhookDeliveryProcessor(deps), {
    deadLetters: true,
    concurrency: config.webhooks.concurrency,
    // A stall is a dead worker, not a refusal by the receiver: it must not fail the delivery for good.
    maxStalledCount: config.webhooks.attempts,
    settings: { backoffStrategy: webhookBackoffStrategy(config) },
  });
  const sweeper = startStripeEventSweeper(deps);
  const schedules = startScheduleKeeper(deps, schedulesFor(stripe !== undefined));
  // The ledger's months ahead at every boot: an existing schedule keeps its next run, hours away.
  void ensurePartitions(deps.db).then(
    (made) => {
      if (made.length > 0) logger.info({ partitions: made }, "ledger partitions made ahead");
    },
    (err: unknown) => logger.warn({ err }, "making ledger partitions ahead failed; the schedule retries"),
  );

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

/** The worker process: every processor, its metrics port, graceful SIGTERM. */
export async function runWorker(): Promise<void> {
  const config = loadConfigOrExit();
  const deps = createDeps(config, "worker");
  if (config.env === "production") await warnAboutRedis(deps.redis, deps.logger);
  // Chats without a provider usage are estimated: load the tokenizer before the first job, not in it.
  await loadTokenizer();
  const workers = startWorkers(deps);
  const metrics = config.metricsPort
    ? await startMetricsServer(deps.metrics.registry, config.metricsPort)
    : undefined;
  deps.logger.info(
    { queues: workers.workers.map((w) => w.name), metricsPort: metrics?.port },
    "worker started",
  );

  // Stop taking jobs, let active ones finish, and at SHUTDOWN_TIMEOUT_MS hand the rest back to the
  // queue so another worker retries them.
  onShutdownSignal(deps.logger, "worker", config.shutdownTimeoutMs + 4_000, async () => {
    await shutdownWorkers(workers, config.shutdownTimeoutMs, deps.logger);
    await metrics?.stop();
    await deps.close();
  });
}

// The Procfile runs this file; `npm start` and the tests import startWorkers from it.
if (process.argv[1] && import.meta.url === pathToFileURL(realpathSync(process.argv[1])).href)
  await runWorker();
