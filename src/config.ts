import { envSchema } from "./env-schema.js";
import { ConfigError } from "./errors.js";
import { readPriceFile, type ModelPrice } from "./billing/pricing/prices.js";
import { redisUrlOf } from "./platform/redis-target.js";

/** Where Postgres and Redis are when DATABASE_URL / REDIS_URL are unset: the conventional local services. */
export const DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/meterline";
export const DEFAULT_REDIS_URL = "redis://127.0.0.1:6379";

export type Config = Readonly<{
  env: "development" | "production" | "test";
  port: number;
  /**
   * The Postgres and Redis to connect to: DATABASE_URL / REDIS_URL, else the defaults above. A Redis
   * Cluster (REDIS_CLUSTER_NODES, or REDIS_URL redis+cluster://) is a `redis+cluster://` URL here.
   */
  databaseUrl: string;
  redisUrl: string;
  /** The URLs the environment set; `npm start` finds or starts a service only where it set none. */
  explicitUrls: Readonly<{ database: string | undefined; redis: string | undefined }>;
  /** Whether rediss:// connections verify the server's certificate. */
  redisTlsRejectUnauthorized: boolean;
  openaiApiKey: string | undefined;
  openaiBaseUrl: string | undefined;
  /** Gemini (Developer API) credentials; undefined when GEMINI_API_KEY is unset. */
  gemini: Readonly<{ apiKey: string; baseUrl: string | undefined }> | undefined;
  /** Anthropic's Messages API, when ANTHROPIC_API_KEY is set (the base URL defaults to Anthropic's). */
  anthropic: Readonly<{ apiKey: string; baseUrl: string | undefined }> | undefined;
  stripeSecretKey: string | undefined;
  stripeWebhookSecret: string | undefined;
  stripeApiBase: string | undefined;
  adminToken: string | undefined;
  /** Customer portal links: their signing secret (set or derived), who may frame the page, and how
   * long it waits for Stripe's invoice preview. */
  portal: Readonly<{ secret: string | undefined; frameAncestors: string; stripeTimeoutMs: number }>;
  /** Where this service is reached from outside (PUBLIC_URL), for links the CLI prints. */
  publicUrl: string | undefined;
  logLevel: string;
  queuePrefix: string;
  bodyLimit: string;
  chat: Readonly<{
    concurrency: number;
    attempts: number;
    backoffMs: number;
    waitMs: number;
    llmTimeoutMs: number;
  }>;
  worker: Readonly<{ lockMs: number; stalledIntervalMs: number }>;
  /** How long a keyed chat's claim and outcome are kept in Postgres. */
  idempotencyTtlS: number;
  /** How long async results are promised (kept in Postgres) and finished jobs stay in Redis. */
  jobRetentionS: number;
  /** How often expired chat claims and outcomes are purged from Postgres. */
  chatPurgeIntervalMs: number;
  /** How often credit grants past their expiry get their expiry entry (src/billing/credits/expiry.ts). */
  creditExpiryIntervalMs: number;
  /** How long a stream's relayed chunks stay in Redis (replays with the same Idempotency-Key). */
  streamTtlS: number;
  /** Open streaming responses allowed per web process, and per customer across all web processes. */
  streams: Readonly<{ maxPerProcess: number; maxPerCustomer: number }>;
  /** The largest serialized chat job payload accepted (413 beyond); BODY_LIMIT bounds the HTTP body. */
  chatJobMaxBytes: number;
  /** Both processes stop within this after SIGTERM (Heroku kills at 30 s). */
  shutdownTimeoutMs: number;
  /** Requests per minute per API key; 0 turns the limit off. `perPlan` overrides by plan id. */
  rateLimit: Readonly<{ perMinute: number; perPlan: Readonly<Record<string, number>> }>;
  metricsPort: number | undefined;
  stripe: Readonly<{ meterEventName: string; timeoutMs: number }>;
  reporting: Readonly<{
    flushIntervalMs: number;
    flushBatch: number;
    sweepIntervalMs: number;
    concurrency: number;
    /** Which meter API sends reports: "auto" streams a flush batch of `streamMinReports` or more. */
    meterApi: "v1" | "v2" | "auto";
    streamMinReports: number;
    attempts: number;
    backoffMs: number;
    backoffMaxMs: number;
    rateLimitMs: number;
    reconcileIntervalMs: number;
    /** A report first attempted longer ago than this is compared with Stripe before a resend. */
    resendCheckAfterMs: number;
    /** How long after a billing period ends its usage is still accepted and reported. */
    periodGraceMs: number;
  }>;
  /** Price for models missing from the table; undefined refuses them. */
  defaultModelPrice: Readonly<{ inputPerM: number; cachedInputPerM: number; outputPerM: number }> | undefined;
  /** Prices from MODEL_PRICES_FILE, over the snapshot's (installed by createDeps); empty without it. */
  priceOverrides: readonly ModelPrice[];
  /** Completion tokens reserved against a hard limit when a request sets no max_tokens. */
  quotaCompletionEstimateTokens: number;
  usage: Readonly<{ concurrency: number; attempts: number }>;
  stripeEvents: Readonly<{
    refetch: boolean;
    attempts: number;
    backoffMs: number;
    concurrency: number;
    sweepMs: number;
    paymentGraceMs: number;
  }>;
  /** Outgoing webhook deliveries (src/notifications/, jobs/webhook-delivery.ts). */
  webhooks: Readonly<{
    attempts: number;
    backoffMs: number;
    maxBackoffMs: number;
    timeoutMs: number;
    concurrency: number;
    sweepIntervalMs: number;
  }>;
  /** How long a worker caches the alert rules (src/billing/alerts/rules.ts). */
  alertRulesCacheMs: number;
  /** Checkout top-ups: amount bounds and the pages Stripe sends the buyer to (a request may name its own). */
  creditCheckout: Readonly<{
    minMicros: number;
    maxMicros: number;
    successUrl: string | undefined;
    cancelUrl: string | undefined;
  }>;
}>;

/** Parses the environment once; throws ConfigError naming every invalid variable. */
export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  // An empty variable means "unset", as in most dotenv setups.
  const present = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ""));
  const parsed = envSchema.safeParse(present);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((issue) => `  ${issue.path.join(".")}: ${issue.message}`);
    throw new ConfigError(`Invalid configuration:\n${lines.join("\n")}`);
  }
  const e = parsed.data;
  return Object.freeze({
    env: e.NODE_ENV,
    port: e.PORT,
    databaseUrl: e.DATABASE_URL ?? DEFAULT_DATABASE_URL,
    redisUrl: redisUrlOf(e.REDIS_URL, e.REDIS_CLUSTER_NODES) ?? DEFAULT_REDIS_URL,
    explicitUrls: Object.freeze({ database: e.DATABASE_URL, redis: e.REDIS_URL }),
    redisTlsRejectUnauthorized: e.REDIS_TLS_REJECT_UNAUTHORIZED,
    openaiApiKey: e.OPENAI_API_KEY,
    openaiBaseUrl: e.OPENAI_BASE_URL,
    gemini: e.GEMINI_API_KEY
      ? Object.freeze({ apiKey: e.GEMINI_API_KEY, baseUrl: e.GEMINI_BASE_URL })
      : undefined,
    anthropic: e.ANTHROPIC_API_KEY
      ? Object.freeze({ apiKey: e.ANTHROPIC_API_KEY, baseUrl: e.ANTHROPIC_BASE_URL })
      : undefined,
    stripeSecretKey: e.STRIPE_SECRET_KEY,
    stripeWebhookSecret: e.STRIPE_WEBHOOK_SECRET,
    stripeApiBase: e.STRIPE_API_BASE,
    adminToken: e.ADMIN_TOKEN,
    portal: Object.freeze({
      secret: e.PORTAL_SECRET,
      frameAncestors: e.PORTAL_FRAME_ANCESTORS,
      stripeTimeoutMs: e.PORTAL_STRIPE_TIMEOUT_MS,
    }),
    publicUrl: e.PUBLIC_URL,
    logLevel: e.LOG_LEVEL,
    queuePrefix: e.QUEUE_PREFIX,
    bodyLimit: e.BODY_LIMIT,
    chat: Object.freeze({
      concurrency: e.CHAT_CONCURRENCY,
      attempts: e.CHAT_ATTEMPTS,
      backoffMs: e.CHAT_BACKOFF_MS,
      waitMs: e.CHAT_WAIT_MS,
      llmTimeoutMs: e.LLM_TIMEOUT_MS,
    }),
    worker: Object.freeze({ lockMs: e.WORKER_LOCK_MS, stalledIntervalMs: e.WORKER_STALLED_INTERVAL_MS }),
    idempotencyTtlS: e.IDEMPOTENCY_TTL_S,
    jobRetentionS: e.JOB_RETENTION_S,
    chatPurgeIntervalMs: e.CHAT_PURGE_INTERVAL_MS,
    creditExpiryIntervalMs: e.CREDIT_EXPIRY_INTERVAL_MS,
    streamTtlS: e.CHAT_STREAM_TTL_S,
    streams: Object.freeze({
      maxPerProcess: e.STREAMS_MAX_PER_PROCESS,
      maxPerCustomer: e.STREAMS_MAX_PER_CUSTOMER,
    }),
    chatJobMaxBytes: e.CHAT_JOB_MAX_BYTES,
    shutdownTimeoutMs: e.SHUTDOWN_TIMEOUT_MS,
    rateLimit: Object.freeze({
      perMinute: e.RATE_LIMIT_PER_MINUTE,
      perPlan: Object.freeze(
        Object.fromEntries(
          (e.RATE_LIMIT_PLANS?.split(",") ?? []).map((pair) => {
            const [plan, limit] = pair.split("=");
            return [plan!, Number(limit)];
          }),
        ),
      ),
    }),
    metricsPort: e.METRICS_PORT,
    stripe: Object.freeze({ meterEventName: e.STRIPE_METER_EVENT_NAME, timeoutMs: e.STRIPE_TIMEOUT_MS }),
    reporting: Object.freeze({
      flushIntervalMs: e.USAGE_FLUSH_INTERVAL_MS,
      flushBatch: e.USAGE_FLUSH_BATCH,
      sweepIntervalMs: e.USAGE_SWEEP_INTERVAL_MS,
      concurrency: e.STRIPE_REPORT_CONCURRENCY,
      meterApi: e.REPORTING_METER_API,
      streamMinReports: e.REPORTING_STREAM_MIN_REPORTS,
      attempts: e.STRIPE_REPORT_ATTEMPTS,
      backoffMs: e.STRIPE_REPORT_BACKOFF_MS,
      backoffMaxMs: e.STRIPE_REPORT_BACKOFF_MAX_MS,
      rateLimitMs: e.STRIPE_RATE_LIMIT_MS,
      reconcileIntervalMs: e.RECONCILE_INTERVAL_MS,
      resendCheckAfterMs: e.STRIPE_RESEND_CHECK_AFTER_MS,
      periodGraceMs: e.USAGE_PERIOD_GRACE_MS,
    }),
    defaultModelPrice: parseDefaultPrice(e.DEFAULT_MODEL_PRICE),
    priceOverrides: parsePriceOverrides(e.MODEL_PRICES_FILE),
    quotaCompletionEstimateTokens: e.QUOTA_COMPLETION_ESTIMATE_TOKENS,
    usage: Object.freeze({ concurrency: e.USAGE_CONCURRENCY, attempts: e.USAGE_ATTEMPTS }),
    stripeEvents: Object.freeze({
      refetch: e.STRIPE_WEBHOOK_REFETCH,
      attempts: e.STRIPE_EVENT_ATTEMPTS,
      backoffMs: e.STRIPE_EVENT_BACKOFF_MS,
      concurrency: e.STRIPE_EVENT_CONCURRENCY,
      sweepMs: e.STRIPE_EVENT_SWEEP_MS,
      paymentGraceMs: e.PAYMENT_GRACE_PERIOD_MS,
    }),
    webhooks: Object.freeze({
      attempts: e.WEBHOOK_ATTEMPTS,
      backoffMs: e.WEBHOOK_BACKOFF_MS,
      maxBackoffMs: e.WEBHOOK_MAX_BACKOFF_MS,
      timeoutMs: e.WEBHOOK_TIMEOUT_MS,
      concurrency: e.WEBHOOK_CONCURRENCY,
      sweepIntervalMs: e.WEBHOOK_SWEEP_INTERVAL_MS,
    }),
    alertRulesCacheMs: e.ALERT_RULES_CACHE_MS,
    creditCheckout: Object.freeze({
      minMicros: e.CREDIT_CHECKOUT_MIN_MICROS,
      maxMicros: e.CREDIT_CHECKOUT_MAX_MICROS,
      successUrl: e.CREDIT_CHECKOUT_SUCCESS_URL,
      cancelUrl: e.CREDIT_CHECKOUT_CANCEL_URL,
    }),
  });
}

/** The override file's prices, or a ConfigError naming the variable, the file and what is wrong. */
function parsePriceOverrides(path: string | undefined): readonly ModelPrice[] {
  if (path === undefined) return [];
  try {
    return Object.freeze(readPriceFile(path));
  } catch (err) {
    throw new ConfigError(`MODEL_PRICES_FILE: ${err instanceof Error ? err.message : String(err)}`);
  }
}

function parseDefaultPrice(value: string | undefined): Config["defaultModelPrice"] {
  if (value === undefined) return undefined;
  const [inputPerM, cachedInputPerM, outputPerM] = value.split(",").map((part) => Number(part.trim()));
  return Object.freeze({ inputPerM: inputPerM!, cachedInputPerM: cachedInputPerM!, outputPerM: outputPerM! });
}

/** The process environment with some variables set by a launcher (npm start) on top. */
export function loadConfigWith(overrides: Record<string, string | undefined>): Config {
  return loadConfig({ ...process.env, ...overrides });
}

/** Loads config or exits the process with the message; for entry points only. */
export function loadConfigOrExit(env: Record<string, string | undefined> = process.env): Config {
  try {
    return loadConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`meterline: ${err.message}\n`);
      process.exit(1);
    }
    throw err;
  }
}
