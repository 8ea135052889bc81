import type { Config } from "./config.js";
import { createDb, type Db } from "./platform/db.js";
import { createLlm, type Llm } from "./llm/client.js";
import { createRoutedLlm, loadingLlm } from "./llm/providers.js";
import { installPriceOverrides } from "./billing/pricing/prices.js";
import { createLogger, type Logger } from "./platform/logger.js";
import { createQueues, QUEUE, queuePrefix, type Queues } from "./queues/queues.js";
import { createChatReplies, jobOutcome, type ChatReplies } from "./queues/chat-replies.js";
import {
  createProducerRedis,
  createWorkerRedis,
  reconnectQuietly,
  redisTlsOf,
  redisTlsWarning,
  type RedisClient,
} from "./platform/redis.js";
import { createPlanCache } from "./billing/pricing/plans.js";
import { createMetrics, type Metrics } from "./platform/metrics.js";
import { createStreamReader, type StreamReader } from "./chat/stream/reader.js";
import { createStreamSlots, type StreamSlots } from "./chat/stream/slots.js";
import { createStripeClient, type StripeClient } from "./billing/reporting/stripe-client.js";
import { createEndUserQuota, createQuota, type EndUserQuota, type Quota } from "./billing/ledger/quota.js";
import { createCreditCounter, type CreditCounter } from "./billing/credits/counter.js";

export interface Deps {
  config: Config;
  logger: Logger;
  db: Db;
  /** Fail-fast connection for producers and API reads. */
  redis: RedisClient;
  queues: Queues;
  llm: Llm;
  plans: ReturnType<typeof createPlanCache>;
  metrics: Metrics;
  /** Undefined without STRIPE_SECRET_KEY: usage then stays in the ledger, unreported. */
  stripe: StripeClient | undefined;
  quota: Quota;
  /** Per-end-user limit counters (README "End users"). */
  endUserQuota: EndUserQuota;
  /** Real-time credit balances (src/billing/credits/counter.ts). */
  creditCounter: CreditCounter;
  close(): Promise<void>;
}

export interface WebDeps extends Deps {
  /** This instance's inbox of its chats' outcomes (src/queues/chat-replies.ts). */
  chatReplies: ChatReplies;
  /** The one blocking reader of every relayed stream in this process. */
  streamReader: StreamReader;
  streamSlots: StreamSlots;
  /** Aborted near the shutdown deadline: requests still waiting on a job answer 202 instead. */
  draining: AbortController;
}

/** The composition root shared by web, worker, CLI and tests. */
export function createDeps(config: Config, name = "meterline"): Deps {
  const logger = createLogger(config.logLevel, name);
  const db = createDb(config.databaseUrl, { max: 20 });
  const tlsWarning = redisTlsWarning(config);
  if (tlsWarning) logger.warn(tlsWarning);
  const redis = reconnectQuietly(createProducerRedis(config.redisUrl, redisTlsOf(config)));
  const queues = createQueues(redis, config);
  installPriceOverrides(config.priceOverrides);
  // Each request goes to its model's provider (src/llm/providers.ts); a provider without a key is
  // left out, and its models are refused at the API. The Anthropic and Gemini SDKs are loaded only
  // for a provider that has a key (about 7 MB of memory each in every web and worker process).
  const { anthropic, gemini } = config;
  const timeoutMs = config.chat.llmTimeoutMs;
  const llm = createRoutedLlm({
    ...(anthropic && {
      anthropic: loadingLlm(async () =>
        (await import("./llm/anthropic/client.js")).createAnthropicLlm({
          apiKey: anthropic.apiKey,
          baseURL: anthropic.baseUrl,
          timeoutMs,
          maxIdleConnections: config.chat.concurrency,
        }),
      ),
    }),
    ...(gemini && {
      gemini: loadingLlm(async () =>
        (await import("./llm/gemini/client.js")).createGeminiLlm({
          apiKey: gemini.apiKey,
          baseURL: gemini.baseUrl,
          timeoutMs,
        }),
      ),
    }),
    openai: createLlm({
      apiKey: config.openaiApiKey ?? "unset",
      baseURL: config.openaiBaseUrl,
      timeoutMs: config.chat.llmTimeoutMs,
      // Every chat slot may hold a connection; keep them all between calls instead of reconnecting.
      maxIdleConnections: config.chat.concurrency,
    }),
  });
  return {
    config,
    logger,
    db,
    redis,
    queues,
    llm,
    plans: createPlanCache(db),
    metrics: createMetrics(() => queues.all),
    stripe: createStripeClient(config),
    quota: createQuota({ db, redis, prefix: config.queuePrefix }),
    endUserQuota: createEndUserQuota({ db, redis, prefix: config.queuePrefix }),
    creditCounter: createCreditCounter({ db, redis, prefix: config.queuePrefix }),
    async close() {
      await queues.close();
      redis.disconnect();
      await db.destroy();
    },
  };
}

/** Web deps add this instance's inbox of chat outcomes, on a subscriber connection of its own. */
export function createWebDeps(config: Config): WebDeps {
  const deps = createDeps(config, "web");
  const chatReplies = createChatReplies({
    subscriber: reconnectQuietly(createWorkerRedis(config.redisUrl, redisTlsOf(config))),
    prefix: queuePrefix(config.queuePrefix, QUEUE.chat),
    outcomeOf: (jobId) => jobOutcome(deps.queues.chat, jobId),
    logger: deps.logger,
  });
  const streamReader = createStreamReader(config.redisUrl, {
    control: deps.redis,
    logger: deps.logger,
    tls: redisTlsOf(config),
  });
  const streamSlots = createStreamSlots(deps);
  return {
    ...deps,
    chatReplies,
    streamReader,
    streamSlots,
    draining: new AbortController(),
    async close() {
      streamReader.close();
      streamSlots.close();
      await chatReplies.close();
      await deps.close();
    },
  };
}
