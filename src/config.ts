import { z } from "zod";
import { ConfigError } from "./errors.js";

export const DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/meterline";
export const DEFAULT_REDIS_URL = "redis://127.0.0.1:6379";

const url = (protocols: string[]) =>
  z.string().refine(
    (value) => {
      try {
        return protocols.includes(new URL(value).protocol);
      } catch {
        return false;
      }
    },
    `must be a ${protocols.map((p) => p.replace(":", "://")).join(" or ")} URL`,
  );

const int = (min: number, max = Number.MAX_SAFE_INTEGER) => z.coerce.number().int().min(min).max(max);

const schema = z.object({
  NODE_ENV: z.enum(["development", "production", "test"]).default("development"),
  PORT: int(0, 65535).default(3000),
  DATABASE_URL: url(["postgres:", "postgresql:"]).optional(),
  REDIS_URL: url(["redis:", "rediss:"]).optional(),
  // Off only for a Redis whose certificate cannot be verified (Heroku Redis: self-signed); warned at boot.
  REDIS_TLS_REJECT_UNAUTHORIZED: z.stringbool().default(true),
  OPENAI_API_KEY: z.string().min(1).optional(),
  OPENAI_BASE_URL: url(["http:", "https:"]).optional(),
  STRIPE_SECRET_KEY: z.string().min(1).optional(),
  STRIPE_WEBHOOK_SECRET: z.string().min(1).optional(),
  STRIPE_API_BASE: url(["http:", "https:"]).optional(),
  ADMIN_TOKEN: z.string().min(16, "must be at least 16 characters").optional(),
  LOG_LEVEL: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
  QUEUE_PREFIX: z
    .string()
    .regex(/^[A-Za-z0-9_{}-]+$/, "letters, digits, _ - { } only")
    .default("meterline"),
  BODY_LIMIT: z.string().default("1mb"),
  CHAT_CONCURRENCY: int(1, 10_000).default(50),
  CHAT_ATTEMPTS: int(1, 100).default(5),
  CHAT_BACKOFF_MS: int(0).default(500),
  CHAT_WAIT_MS: int(1).default(60_000),
  LLM_TIMEOUT_MS: int(1).default(60_000),
  WORKER_LOCK_MS: int(1000).default(30_000),
  WORKER_STALLED_INTERVAL_MS: int(1000).default(30_000),
  IDEMPOTENCY_TTL_S: int(60).default(86_400),
  CHAT_PURGE_INTERVAL_MS: int(1_000).default(600_000),
  // Async results are promised for at least 24 hours.
  JOB_RETENTION_S: int(86_400).default(86_400),
  CHAT_STREAM_TTL_S: int(60).default(3_600),
  STREAMS_MAX_PER_PROCESS: int(1).default(1_000),
  STREAMS_MAX_PER_CUSTOMER: int(1).default(50),
  // A chat job lives in Redis (noeviction) until it is removed: its payload is the memory it costs.
  CHAT_JOB_MAX_BYTES: int(1_024).default(262_144),
  SHUTDOWN_TIMEOUT_MS: int(1_000, 25_000).default(20_000),
  RATE_LIMIT_PER_MINUTE: int(0).default(600),
  RATE_LIMIT_PLANS: z
    .string()
    .regex(/^([\w-]+=\d+)(,[\w-]+=\d+)*$/, "must look like free=60,pro=600")
    .optional(),
  METRICS_PORT: int(1, 65535).optional(),
  STRIPE_METER_EVENT_NAME: z
    .string()
    .regex(/^[A-Za-z0-9_.-]{1,100}$/, "1-100 letters, digits, _ . - only")
    .default("meterline_tokens"),
  STRIPE_TIMEOUT_MS: int(100).default(20_000),
  USAGE_FLUSH_INTERVAL_MS: int(100).default(60_000),
  USAGE_FLUSH_BATCH: int(1, 1_000_000).default(50_000),
  USAGE_SWEEP_INTERVAL_MS: int(100).default(300_000),
  // Stripe finalizes a period's invoice about an hour after the period ends: stay well inside that.
  USAGE_PERIOD_GRACE_MS: int(0).default(1_800_000),
  STRIPE_REPORT_CONCURRENCY: int(1, 1_000).default(10),
  STRIPE_REPORT_ATTEMPTS: int(1, 1_000).default(25),
  STRIPE_REPORT_BACKOFF_MS: int(1).default(2_000),
  STRIPE_REPORT_BACKOFF_MAX_MS: int(1).default(3_600_000),
  STRIPE_RATE_LIMIT_MS: int(1).default(1_000),
  RECONCILE_INTERVAL_MS: int(1_000).default(21_600_000),
  // Below Stripe's 24-hour identifier window, with a margin for clocks (report-resend.ts).
  STRIPE_RESEND_CHECK_AFTER_MS: int(0, 86_340_000).default(82_800_000),
  // "input,cached input,output" micro-dollars per 1M tokens for models missing from the price table.
  DEFAULT_MODEL_PRICE: z
    .string()
    .regex(/^\s*\d+\s*,\s*\d+\s*,\s*\d+\s*$/, 'must be "input,cached,output" integer micros per 1M tokens')
    .optional(),
  QUOTA_COMPLETION_ESTIMATE_TOKENS: int(1).default(1024),
  USAGE_CONCURRENCY: int(1, 1_000).default(4),
  USAGE_ATTEMPTS: int(1, 100).default(5),
  STRIPE_WEBHOOK_REFETCH: z.stringbool().default(false),
  STRIPE_EVENT_ATTEMPTS: int(1, 100).default(15),
  STRIPE_EVENT_BACKOFF_MS: int(0).default(2_000),
  STRIPE_EVENT_CONCURRENCY: int(1, 1_000).default(10),
  STRIPE_EVENT_SWEEP_MS: int(100).default(60_000),
  PAYMENT_GRACE_PERIOD_MS: int(0).default(3 * 86_400_000),
});

export type Config = Readonly<{
  env: "development" | "production" | "test";
  port: number;
  databaseUrl: string | undefined;
  redisUrl: string | undefined;
  /** Whether rediss:// connections verify the server's certificate. */
  redisTlsRejectUnauthorized: boolean;
  openaiApiKey: string | undefined;
  openaiBaseUrl: string | undefined;
  stripeSecretKey: string | undefined;
  stripeWebhookSecret: string | undefined;
  stripeApiBase: string | undefined;
  adminToken: string | undefined;
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
}>;

/** Parses the environment once; throws ConfigError naming every invalid variable. */
export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  // An empty variable means "unset", as in most dotenv setups.
  const present = Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ""));
  const parsed = schema.safeParse(present);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((issue) => `  ${issue.path.join(".")}: ${issue.message}`);
    throw new ConfigError(`Invalid configuration:\n${lines.join("\n")}`);
  }
  const e = parsed.data;
  return Object.freeze({
    env: e.NODE_ENV,
    port: e.PORT,
    databaseUrl: e.DATABASE_URL,
    redisUrl: e.REDIS_URL,
    redisTlsRejectUnauthorized: e.REDIS_TLS_REJECT_UNAUTHORIZED,
    openaiApiKey: e.OPENAI_API_KEY,
    openaiBaseUrl: e.OPENAI_BASE_URL,
    stripeSecretKey: e.STRIPE_SECRET_KEY,
    stripeWebhookSecret: e.STRIPE_WEBHOOK_SECRET,
    stripeApiBase: e.STRIPE_API_BASE,
    adminToken: e.ADMIN_TOKEN,
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
      attempts: e.STRIPE_REPORT_ATTEMPTS,
      backoffMs: e.STRIPE_REPORT_BACKOFF_MS,
      backoffMaxMs: e.STRIPE_REPORT_BACKOFF_MAX_MS,
      rateLimitMs: e.STRIPE_RATE_LIMIT_MS,
      reconcileIntervalMs: e.RECONCILE_INTERVAL_MS,
      resendCheckAfterMs: e.STRIPE_RESEND_CHECK_AFTER_MS,
      periodGraceMs: e.USAGE_PERIOD_GRACE_MS,
    }),
    defaultModelPrice: parseDefaultPrice(e.DEFAULT_MODEL_PRICE),
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
  });
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
