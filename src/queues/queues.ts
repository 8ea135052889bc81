import { Queue, type JobsOptions } from "bullmq";
import { z } from "zod";
import type { Config } from "../config.js";
import { reconnectQuietly, type RedisClient } from "../platform/redis.js";

/** Every queue, defined once: producers and processors both import from here. */
export const QUEUE = {
  chat: "chat",
  usageFlush: "usage-flush",
  stripeReport: "stripe-report",
  reconcile: "reconcile",
  usage: "usage",
  stripeEvent: "stripe-event",
  maintenance: "maintenance",
  webhookDelivery: "webhook-delivery",
} as const;
export type QueueName = (typeof QUEUE)[keyof typeof QUEUE];

/** A `{hashtag}` prefix per queue keeps every key of one queue in one Redis Cluster slot. */
export function queuePrefix(base: string, name: QueueName): string {
  return `{${base}-${name}}`;
}

export const chatErrorSchema = z.object({
  status: z.number().int(),
  message: z.string(),
  type: z.string(),
  code: z.string().nullable(),
});
export type ChatError = z.infer<typeof chatErrorSchema>;

/** A token reservation a chat job settles (src/billing/ledger/quota.ts QuotaHold). */
const quotaHoldSchema = z.object({
  periodStart: z.string(),
  tokens: z.number().int().nonnegative(),
  completionTokens: z.number().int().positive().optional(),
});

export const chatJobSchema = z.object({
  requestId: z.string(),
  customerId: z.string(),
  planId: z.string(),
  // The OpenAI request as the client sent it (validated at the API), minus streaming flags.
  request: z.looseObject({ model: z.string(), messages: z.array(z.looseObject({ role: z.string() })) }),
  // Hash of the request body, kept only for Idempotency-Key requests (same key, other body → 422).
  bodyHash: z.string().optional(),
  // Relay the answer as chunks through the request's Redis stream (src/chat/stream/protocol.ts).
  stream: z.boolean().optional(),
  receivedAt: z.string(),
  // Keyed and async chats: their outcome is kept in Postgres (chat_requests) this many seconds.
  keepS: z.number().int().positive().optional(),
  // Kept on the job when the LLM answered but the ledger write failed, so the retry does not pay
  // the LLM twice.
  completion: z.looseObject({ id: z.string(), model: z.string() }).optional(),
  // The web instance's channel that hears the outcome (src/queues/chat-replies.ts).
  replyTo: z.string().optional(),
  // Set when the job failed for good, so the API can answer with the provider's status.
  error: chatErrorSchema.optional(),
  // The tokens reserved against a hard limit and the period they count in; settled by the job.
  // `completionTokens` of them are the completion's share: the provider's completion is capped there.
  quota: quotaHoldSchema.optional(),
  // The customer's end user this request was made for (`user` or X-End-User): this request's only.
  endUser: z.string().optional(),
  // The tokens reserved against that end user's limit, as `quota`; settled by the job.
  endUserQuota: quotaHoldSchema.optional(),
  // The credits reserved for a prepaid customer's chat (src/billing/credits/counter.ts); settled by
  // the job. `completionTokens`: the completion the reservation covers, where the provider is capped.
  credits: z
    .object({
      micros: z.number().int().nonnegative(),
      completionTokens: z.number().int().positive(),
    })
    .optional(),
});
export type ChatJobData = z.infer<typeof chatJobSchema>;

const DAY_S = 86_400;

/** Retries with exponential backoff and jitter, so a fleet of retries does not arrive at once. */
const retried = (attempts: number, delay: number): JobsOptions => ({
  attempts,
  backoff: { type: "exponential", delay, jitter: 0.5 },
});

export function chatJobOptions(config: Config): JobsOptions {
  return {
    ...retried(config.chat.attempts, config.chat.backoffMs),
    // Finished chats stay a while for waiting requests and Bull Board; what a repeated key or a
    // poll is promised lives in Postgres (chat_requests), so the count only bounds Redis memory.
    removeOnComplete: { age: config.jobRetentionS, count: 10_000 },
    removeOnFail: { age: 7 * DAY_S, count: 10_000 },
  };
}

/** What a streaming chat job returns when its client left before it started: nothing ran. */
export type AbandonedChat = { abandoned: true };

/** Most events Stripe accepts in one meter event stream request, so the most reports in a batch job. */
export const STREAM_MAX_EVENTS = 100;

/**
 * A `stripe-report` job sends one report (a v1 meter event, or a one-event stream request), or a
 * batch of reports as one v2 meter event stream request (src/billing/reporting/report-batches.ts).
 * A single job enqueued before batches may still carry `api`: it is ignored.
 */
export const stripeReportJobSchema = z.union([
  z.object({ reportId: z.number().int().positive() }),
  z.object({
    batchId: z.number().int().positive(),
    reportIds: z.array(z.number().int().positive()).min(1).max(STREAM_MAX_EVENTS),
  }),
]);
export type StripeReportJobData = z.infer<typeof stripeReportJobSchema>;
export type ReportBatchJobData = Extract<StripeReportJobData, { batchId: number }>;

/** A report's job id: BullMQ ids may be neither all digits nor contain ":". */
export const reportJobId = (reportId: number): string => `report-${reportId}`;
/** A batch's job id; the batch id is its first report's id, kept on each report as `batch_id`. */
export const reportBatchJobId = (batchId: number): string => `report-batch-${batchId}`;

export const reconcileJobSchema = z.object({ day: z.iso.date().optional() });
export type ReconcileJobData = z.infer<typeof reconcileJobSchema>;

/**
 * Retries by the named backoff strategy the queue's worker registers (capped, jittered exponential).
 * Failed jobs stay retryable in Bull Board for 30 days; dead_letters keeps them after that.
 */
const strategyRetried = (config: Config, attempts: number, strategy: QueueName): JobsOptions => ({
  attempts,
  backoff: { type: strategy },
  removeOnComplete: { age: config.jobRetentionS, count: 100_000 },
  removeOnFail: { age: 30 * DAY_S },
});

export function stripeReportJobOptions(config: Config): JobsOptions {
  return strategyRetried(config, config.reporting.attempts, QUEUE.stripeReport);
}

/** One accepted batch of ingested usage events; each event becomes one usage row. */
export const usageJobSchema = z.object({
  customerId: z.string(),
  planId: z.string(),
  events: z.array(
    z.object({
      requestId: z.string(),
      model: z.string(),
      promptTokens: z.number().int().nonnegative(),
      cachedTokens: z.number().int().nonnegative(),
      // Defaulted: a batch enqueued before cache writes were recorded has none.
      cacheWriteTokens: z.number().int().nonnegative().default(0),
      completionTokens: z.number().int().nonnegative(),
      reasoningTokens: z.number().int().nonnegative(),
      timestamp: z.string(),
      endUser: z.string().optional(),
    }),
  ),
});
export type UsageJobData = z.infer<typeof usageJobSchema>;

export function usageJobOptions(config: Config): JobsOptions {
  return {
    ...retried(config.usage.attempts, 1_000),
    removeOnComplete: { age: config.jobRetentionS, count: 10_000 },
    removeOnFail: { age: 7 * DAY_S },
  };
}

/**
 * `stripe-event` jobs: "apply" (jobId = Stripe event id) applies one stored event; "suspend"
 * (jobId per customer and past-due episode, delayed by the grace period) re-checks a past-due customer.
 */
export const stripeEventJobSchema = z.discriminatedUnion("kind", [
  z.object({ kind: z.literal("apply"), eventId: z.string() }),
  z.object({ kind: z.literal("suspend"), customerId: z.string(), since: z.string() }),
]);
export type StripeEventJobData = z.infer<typeof stripeEventJobSchema>;

export function stripeEventJobOptions(config: Config): JobsOptions {
  return {
    ...retried(config.stripeEvents.attempts, config.stripeEvents.backoffMs),
    removeOnComplete: { age: config.jobRetentionS, count: 100_000 },
    removeOnFail: { age: 7 * DAY_S },
  };
}

/** One outgoing webhook delivery; the job id is the delivery id. Never the secret nor the body. */
export const webhookDeliveryJobSchema = z.object({ deliveryId: z.string().min(1) });
export type WebhookDeliveryJobData = z.infer<typeof webhookDeliveryJobSchema>;

export function webhookDeliveryJobOptions(config: Config): JobsOptions {
  return strategyRetried(config, config.webhooks.attempts, QUEUE.webhookDelivery);
}

/** Each queue's payload schema: its processor gets the payload parsed with it (src/queues/processor.ts). */
export const JOB_SCHEMAS = {
  [QUEUE.chat]: chatJobSchema,
  [QUEUE.usage]: usageJobSchema,
  [QUEUE.stripeReport]: stripeReportJobSchema,
  [QUEUE.reconcile]: reconcileJobSchema,
  [QUEUE.stripeEvent]: stripeEventJobSchema,
  [QUEUE.webhookDelivery]: webhookDeliveryJobSchema,
  // Scheduled ticks that carry no payload: whatever they hold is ignored.
  [QUEUE.usageFlush]: z.unknown(),
  [QUEUE.maintenance]: z.unknown(),
} satisfies Record<QueueName, z.ZodType>;
export type JobData<Q extends QueueName> = z.infer<(typeof JOB_SCHEMAS)[Q]>;

export interface Queues {
  chat: Queue<ChatJobData>;
  usageFlush: Queue;
  stripeReport: Queue<StripeReportJobData>;
  reconcile: Queue<ReconcileJobData>;
  usage: Queue<UsageJobData>;
  stripeEvent: Queue<StripeEventJobData>;
  maintenance: Queue;
  webhookDelivery: Queue<WebhookDeliveryJobData>;
  all: Queue[];
  byName(name: string): Queue | undefined;
  close(): Promise<void>;
}

/** Producer-side queues on one shared fail-fast connection. */
export function createQueues(connection: RedisClient, config: Config): Queues {
  const chat = new Queue<ChatJobData>(QUEUE.chat, {
    connection,
    prefix: queuePrefix(config.queuePrefix, QUEUE.chat),
    defaultJobOptions: chatJobOptions(config),
  });
  const queue = <T>(name: QueueName, defaultJobOptions: JobsOptions) =>
    new Queue<T>(name, { connection, prefix: queuePrefix(config.queuePrefix, name), defaultJobOptions });
  const scheduled: JobsOptions = { removeOnComplete: { count: 100 }, removeOnFail: { count: 1_000 } };
  const usageFlush = queue(QUEUE.usageFlush, scheduled);
  const stripeReport = queue<StripeReportJobData>(QUEUE.stripeReport, stripeReportJobOptions(config));
  const reconcile = queue<ReconcileJobData>(QUEUE.reconcile, scheduled);
  const usage = queue<UsageJobData>(QUEUE.usage, usageJobOptions(config));
  const stripeEvent = queue<StripeEventJobData>(QUEUE.stripeEvent, stripeEventJobOptions(config));
  const maintenance = queue(QUEUE.maintenance, scheduled);
  const webhookDelivery = queue<WebhookDeliveryJobData>(
    QUEUE.webhookDelivery,
    webhookDeliveryJobOptions(config),
  );
  const named = {
    chat,
    usage,
    usageFlush,
    stripeReport,
    reconcile,
    stripeEvent,
    maintenance,
    webhookDelivery,
  };
  const all = Object.values(named) as Queue[];
  // A queue without an error listener makes BullMQ console.error every reconnect during a Redis
  // outage (its job scheduler forwards errors to the queue). Outages surface as 503s and /readyz.
  for (const queue of all) reconnectQuietly(queue);
  return {
    ...named,
    all,
    byName: (name) => all.find((q) => q.name === name),
    close: async () => {
      await Promise.all(all.map((q) => q.close()));
    },
  };
}
