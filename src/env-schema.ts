import { z } from "zod";
import { parseClusterNodes, parseClusterUrl } from "./platform/redis-target.js";

// Every environment variable meterline reads: its type, bounds and default. config.ts parses the
// environment with this schema once and derives the Config the rest of the code takes.

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

export const envSchema = z.object({
  NODE_ENV: z.enum(["development", "production", "test"]).default("development"),
  PORT: int(0, 65535).default(3000),
  DATABASE_URL: url(["postgres:", "postgresql:"]).optional(),
  REDIS_URL: z
    .union([
      url(["redis:", "rediss:"]),
      z
        .string()
        .refine((value) => parseClusterUrl(value) !== undefined, "must be a redis+cluster://host:port,… URL"),
    ])
    .optional(),
  // A Redis Cluster's seed nodes, host:port,host:port; REDIS_URL then only lends its scheme and credentials.
  REDIS_CLUSTER_NODES: z
    .string()
    .refine((value) => parseClusterNodes(value) !== undefined, "must be host:port,host:port")
    .optional(),
  // Off only for a Redis whose certificate cannot be verified (Heroku Redis: self-signed); warned at boot.
  REDIS_TLS_REJECT_UNAUTHORIZED: z.stringbool().default(true),
  OPENAI_API_KEY: z.string().min(1).optional(),
  OPENAI_BASE_URL: url(["http:", "https:"]).optional(),
  GEMINI_API_KEY: z.string().min(1).optional(),
  GEMINI_BASE_URL: url(["http:", "https:"]).optional(),
  ANTHROPIC_API_KEY: z.string().min(1).optional(),
  ANTHROPIC_BASE_URL: url(["http:", "https:"]).optional(),
  STRIPE_SECRET_KEY: z.string().min(1).optional(),
  STRIPE_WEBHOOK_SECRET: z.string().min(1).optional(),
  STRIPE_API_BASE: url(["http:", "https:"]).optional(),
  ADMIN_TOKEN: z.string().min(16, "must be at least 16 characters").optional(),
  // Signs customer portal links; defaults to a key derived from ADMIN_TOKEN (src/api/portal/links.ts).
  PORTAL_SECRET: z.string().min(16, "must be at least 16 characters").optional(),
  // The portal page's Content-Security-Policy frame-ancestors: who may embed it ('none' by default).
  // Where this service is reached from outside, for links it prints (portal links from the CLI).
  PUBLIC_URL: url(["http:", "https:"]).optional(),
  PORTAL_FRAME_ANCESTORS: z.string().min(1).default("'none'"),
  // How long the portal waits for Stripe's invoice preview before showing meterline's own rating.
  PORTAL_STRIPE_TIMEOUT_MS: int(100).default(3_000),
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
  CREDIT_EXPIRY_INTERVAL_MS: int(1_000).default(300_000),
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
  // v1: one meter event per call; v2: the meter event stream; auto: the stream for big flushes.
  REPORTING_METER_API: z.enum(["v1", "v2", "auto"]).default("auto"),
  REPORTING_STREAM_MIN_REPORTS: int(1).default(1_000),
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
  // A JSON file of prices ({"prices":[…]}, src/billing/pricing/prices.ts) that win over the snapshot.
  MODEL_PRICES_FILE: z.string().min(1).optional(),
  QUOTA_COMPLETION_ESTIMATE_TOKENS: int(1).default(1024),
  USAGE_CONCURRENCY: int(1, 1_000).default(4),
  USAGE_ATTEMPTS: int(1, 100).default(5),
  STRIPE_WEBHOOK_REFETCH: z.stringbool().default(false),
  STRIPE_EVENT_ATTEMPTS: int(1, 100).default(15),
  STRIPE_EVENT_BACKOFF_MS: int(0).default(2_000),
  STRIPE_EVENT_CONCURRENCY: int(1, 1_000).default(10),
  STRIPE_EVENT_SWEEP_MS: int(100).default(60_000),
  PAYMENT_GRACE_PERIOD_MS: int(0).default(3 * 86_400_000),
  // Outgoing webhooks: the defaults retry for about three days (30 s doubling to a 6 h ceiling,
  // jittered between half and all of it: 26 attempts span ~2 to ~4 days, ~3 on average).
  WEBHOOK_ATTEMPTS: int(1, 1_000).default(26),
  WEBHOOK_BACKOFF_MS: int(1).default(30_000),
  WEBHOOK_MAX_BACKOFF_MS: int(1).default(21_600_000),
  WEBHOOK_TIMEOUT_MS: int(100, 120_000).default(10_000),
  WEBHOOK_CONCURRENCY: int(1, 1_000).default(10),
  WEBHOOK_SWEEP_INTERVAL_MS: int(100).default(300_000),
  // How long a worker keeps the alert rules before reading them again (src/billing/alerts/).
  ALERT_RULES_CACHE_MS: int(0, 3_600_000).default(10_000),
  // Checkout top-ups (POST /v1/credits/checkout): bounds in micro-dollars, where Stripe sends the buyer after.
  CREDIT_CHECKOUT_MIN_MICROS: int(500_000).default(5_000_000),
  CREDIT_CHECKOUT_MAX_MICROS: int(500_000, 999_999_990_000).default(1_000_000_000),
  CREDIT_CHECKOUT_SUCCESS_URL: url(["http:", "https:"]).optional(),
  CREDIT_CHECKOUT_CANCEL_URL: url(["http:", "https:"]).optional(),
});

export type Env = z.infer<typeof envSchema>;
