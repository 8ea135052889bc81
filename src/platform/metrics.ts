import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from "prom-client";
import type { Queue } from "bullmq";
import { boundedLabel, knownModel, MAX_LABEL_VALUES } from "./metric-labels.js";

const JOB_STATES = [
  "waiting",
  "active",
  "delayed",
  "prioritized",
  "waiting-children",
  "failed",
  "completed",
] as const;

/**
 * Every Prometheus metric meterline exports, on a registry of its own per process (never the global
 * default registry: tests run several apps in one process). Queue sizes are read at scrape time.
 */
export function createMetrics(queues: () => readonly Queue[]) {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: "meterline_" });
  const registers = [registry];
  const counter = <L extends string = never>(name: string, help: string, labelNames: readonly L[] = []) =>
    new Counter<L>({ name, help, labelNames, registers });
  return {
    registry,
    /** Label values of customer-supplied model names: the price table's models, else `other`. */
    modelLabel: boundedLabel(MAX_LABEL_VALUES, knownModel),
    /** Stripe event types: signed, yet named by a sender outside this process; capped like the rest. */
    webhookTypeLabel: boundedLabel(MAX_LABEL_VALUES),
    httpDuration: new Histogram({
      name: "meterline_http_request_duration_seconds",
      help: "HTTP request durations by method, route and status",
      labelNames: ["method", "route", "status"] as const,
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers,
    }),
    rateLimited: counter(
      "meterline_rate_limited_total",
      "Requests refused with 429 by the per-key rate limit",
    ),
    jobDuration: new Histogram({
      name: "meterline_job_duration_seconds",
      help: "Job attempt durations by queue and outcome (completed, retry, failed)",
      labelNames: ["queue", "outcome"] as const,
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120],
      registers,
    }),
    tokens: counter(
      "meterline_tokens_total",
      "Tokens recorded in the usage ledger by model and type (prompt, cached, completion, reasoning)",
      ["model", "type", "source"],
    ),
    stripeReports: counter(
      "meterline_stripe_reports_total",
      "Stripe meter-event calls by outcome (sent, duplicate, rate-limited, retryable, permanent)",
      ["outcome"],
    ),
    unreportableReports: counter(
      "meterline_unreportable_reports_total",
      "Usage reports refused before sending because Stripe can no longer bill them (too_old: outside the 35-day meter window; period_closed: the period is invoiced); bill them by hand",
      ["reason"],
    ),
    usageQuarantined: counter(
      "meterline_usage_quarantined_total",
      "Usage rows the flush set aside in a failed report with a dead letter instead of reporting them, by reason (value_over_limit: their window's sum is above the largest reportable value; report_insert_failed: writing their report failed); other customers keep flushing",
      ["reason"],
    ),
    deadLetters: counter(
      "meterline_dead_letters_total",
      "Jobs that failed for good and were recorded as dead letters, by queue",
      ["queue"],
    ),
    webhookEvents: counter(
      "meterline_webhook_events_total",
      "Stripe webhook events by type and outcome: received/duplicate at intake, then the worker's status (processed, ignored), retry or dead",
      ["type", "outcome"],
    ),
    queueJobs: new Gauge({
      name: "meterline_queue_jobs",
      help: "Jobs per queue and state, read from Redis at scrape time",
      labelNames: ["queue", "state"] as const,
      registers,
      async collect() {
        this.reset();
        await Promise.all(
          queues().map(async (queue) => {
            // Redis down: leave this queue out of the scrape rather than fail it.
            const counts = await queue.getJobCounts(...JOB_STATES).catch(() => undefined);
            for (const state of JOB_STATES) {
              if (counts) this.set({ queue: queue.name, state }, counts[state] ?? 0);
            }
          }),
        );
      },
    }),
  };
}
export type Metrics = ReturnType<typeof createMetrics>;

/** Counts a ledger row's tokens by model, type and source; call once per row actually inserted. */
export function countTokens(
  metrics: Pick<Metrics, "tokens" | "modelLabel">,
  row: {
    model: string;
    source: string;
    promptTokens: number;
    cachedTokens: number;
    cacheWriteTokens: number;
    completionTokens: number;
    reasoningTokens: number;
  },
): void {
  const labels = { model: metrics.modelLabel(row.model), source: row.source };
  metrics.tokens.inc({ ...labels, type: "prompt" }, row.promptTokens);
  metrics.tokens.inc({ ...labels, type: "cached" }, row.cachedTokens);
  metrics.tokens.inc({ ...labels, type: "cache_write" }, row.cacheWriteTokens);
  metrics.tokens.inc({ ...labels, type: "completion" }, row.completionTokens);
  metrics.tokens.inc({ ...labels, type: "reasoning" }, row.reasoningTokens);
}
