import { z } from "zod";
import { listPriceMicros, type Plan } from "../billing/pricing/plans.js";
import { providerCostMicros, resolvePrice, type DefaultPrice } from "../billing/pricing/prices.js";
import { MAX_MICROS_PER_EVENT, MAX_TOKENS_PER_EVENT } from "../billing/ledger/usage-bounds.js";
import {
  oldestAccepted,
  periodClosed,
  STRIPE_METER_MAX_AHEAD_MS,
} from "../billing/reporting/report-deadlines.js";
import { checkInput } from "./input.js";
import { END_USER_MAX_CHARS } from "../billing/end-users/limits.js";

export const MAX_EVENTS_PER_BATCH = 1_000;

/** A usage event that passed validation, normalized. */
export interface ValidUsageEvent {
  /** Position in the posted batch. */
  index: number;
  id: string;
  model: string;
  promptTokens: number;
  cachedTokens: number;
  cacheWriteTokens: number;
  completionTokens: number;
  reasoningTokens: number;
  timestamp: Date;
  /** The customer's end user the usage was for (`user`), when it names one. */
  endUser?: string;
}

export interface UsageEventError {
  index: number;
  id: string | null;
  param: string | null;
  code: string;
  message: string;
}

/**
 * Validates each event on its own: bad events are reported by index with the reason and never
 * block the valid ones. An id repeated inside one batch is reported after its first occurrence.
 */
export function validateUsageEvents(
  events: readonly unknown[],
  options: {
    defaultPrice: DefaultPrice | undefined;
    now?: Date;
    /** The customer's plan, to bound each event's list price; absent, only the provider cost is. */
    plan?: Pick<Plan, "overagePer1kMicros">;
  },
): { valid: ValidUsageEvent[]; errors: UsageEventError[] } {
  const schema = usageEventSchema(options.now ?? new Date(), options.defaultPrice, options.plan);
  const valid: ValidUsageEvent[] = [];
  const errors: UsageEventError[] = [];
  const seen = new Set<string>();
  events.forEach((raw, index) => {
    const checked = checkInput(schema, raw);
    if (checked.ok && !seen.has(checked.data.id)) {
      seen.add(checked.data.id);
      valid.push({ index, ...checked.data });
      return;
    }
    const problem = checked.ok
      ? {
          param: "id",
          code: "duplicate_id",
          message: `id '${checked.data.id}' appears earlier in this batch`,
        }
      : checked.problem;
    const id = isRecord(raw) && typeof raw.id === "string" ? raw.id : null;
    const param = problem.param === null ? null : `events[${index}].${problem.param}`;
    errors.push({ index, id, param, code: problem.code, message: problem.message });
  });
  return { valid, errors };
}

/**
 * Moves to the errors each valid event whose timestamp lies in a billing period already invoiced
 * (`periodEnds[i]`: the end of the period holding `valid[i]`, null when none): Stripe would never
 * bill it. Errors stay in batch order.
 */
export function refuseInvoicedPeriods(
  checked: { valid: ValidUsageEvent[]; errors: UsageEventError[] },
  periodEnds: ReadonlyArray<Date | null>,
  options: { now: Date; graceMs: number },
): { valid: ValidUsageEvent[]; errors: UsageEventError[] } {
  const valid: ValidUsageEvent[] = [];
  const errors = [...checked.errors];
  checked.valid.forEach((event, i) => {
    const end = periodEnds[i] ?? null;
    if (!periodClosed(end, options.now, options.graceMs)) {
      valid.push(event);
      return;
    }
    errors.push({
      index: event.index,
      id: event.id,
      param: `events[${event.index}].timestamp`,
      code: "period_closed",
      message:
        `'timestamp' falls in the billing period that ended at ${end!.toISOString()}, already invoiced; ` +
        `usage is accepted until ${Math.round(options.graceMs / 60_000)} minutes after its period ends`,
    });
  });
  errors.sort((a, b) => a.index - b.index);
  return { valid, errors };
}

const ID = "'id' must be a string of 1–255 characters";
const MODEL = "'model' must be a non-empty string";
const USER = `'user' must be a string of at most ${END_USER_MAX_CHARS} characters`;
// The message for a field's wrong type, or for its absence.
const typeError = (name: string, message: string) => (issue: { input?: unknown }) =>
  issue.input === undefined ? `'${name}' is required` : message;

/** A token count; at most MAX_TOKENS_PER_EVENT, so no row or sum of rows overflows when priced. */
function tokenCount(name: string) {
  const message = `'${name}' must be a non-negative integer`;
  return z
    .number({ error: typeError(name, message) })
    .int(message)
    .nonnegative(message)
    .refine((value) => value <= MAX_TOKENS_PER_EVENT, {
      message: `'${name}' is at most ${MAX_TOKENS_PER_EVENT} per event; split larger usage into several events`,
      params: { code: "tokens_out_of_range" },
    });
}

const eventFields = z.object({
  id: z
    .string({ error: typeError("id", ID) })
    .min(1, ID)
    .max(255, ID),
  model: z.string({ error: typeError("model", MODEL) }).min(1, MODEL),
  prompt_tokens: tokenCount("prompt_tokens"),
  completion_tokens: tokenCount("completion_tokens"),
  cached_tokens: tokenCount("cached_tokens").nullish(),
  cache_write_tokens: tokenCount("cache_write_tokens").nullish(),
  reasoning_tokens: tokenCount("reasoning_tokens").nullish(),
  timestamp: z.unknown().optional(),
  user: z
    .string({ error: USER })
    .max(END_USER_MAX_CHARS, USER)
    .nullish()
    .transform((user) => user || undefined),
});

/**
 * One event: its fields, then what depends on them, in the order a client fixes them — counts that
 * contradict each other, the timestamp, the model's price, the event's cost.
 */
function usageEventSchema(
  now: Date,
  defaultPrice: DefaultPrice | undefined,
  plan: Pick<Plan, "overagePer1kMicros"> | undefined,
) {
  return z
    .custom<Record<string, unknown>>(isRecord, {
      message: "each event must be a JSON object",
      params: { code: "invalid_event" },
    })
    .pipe(eventFields)
    .transform((raw, ctx): Omit<ValidUsageEvent, "index"> => {
      const fail = (param: string | null, code: string, message: string) => {
        ctx.addIssue({ code: "custom", message, params: { code }, path: param === null ? [] : [param] });
        return z.NEVER;
      };
      const { prompt_tokens: promptTokens, completion_tokens: completionTokens } = raw;
      const cachedTokens = raw.cached_tokens ?? 0;
      const cacheWriteTokens = raw.cache_write_tokens ?? 0;
      const reasoningTokens = raw.reasoning_tokens ?? 0;
      if (cachedTokens > promptTokens)
        return fail("cached_tokens", "invalid_value", "'cached_tokens' cannot exceed 'prompt_tokens'");
      if (cachedTokens + cacheWriteTokens > promptTokens) {
        const message = "'cached_tokens' and 'cache_write_tokens' together cannot exceed 'prompt_tokens'";
        return fail("cache_write_tokens", "invalid_value", message);
      }
      if (reasoningTokens > completionTokens) {
        const message = "'reasoning_tokens' cannot exceed 'completion_tokens'";
        return fail("reasoning_tokens", "invalid_value", message);
      }
      const timestamp = timestampOf(raw.timestamp, now);
      if (!(timestamp instanceof Date)) return fail("timestamp", timestamp.code, timestamp.message);
      const price = resolvePrice(raw.model, defaultPrice, timestamp);
      if (!price) {
        const message = `the model '${raw.model}' does not exist or has no price configured`;
        return fail("model", "model_not_found", message);
      }
      const usage = { promptTokens, cachedTokens, cacheWriteTokens, completionTokens, reasoningTokens };
      // Bounded so no row, and no sum of a customer's rows, can overflow when priced or reported.
      const micros = Math.max(
        providerCostMicros(usage, price),
        plan ? listPriceMicros(plan, promptTokens + completionTokens) : 0,
      );
      if (micros > MAX_MICROS_PER_EVENT) {
        const message = `the event costs more than the maximum of ${MAX_MICROS_PER_EVENT} micro-dollars per event at the price of '${raw.model}'; split it into smaller events`;
        return fail(null, "cost_out_of_range", message);
      }
      return {
        id: raw.id,
        model: raw.model,
        ...usage,
        timestamp,
        ...(raw.user ? { endUser: raw.user } : {}),
      };
    });
}

/**
 * ISO 8601 text or Unix seconds; young enough to reach Stripe's 35-day window after the flush and
 * the report's retries (see report-deadlines.ts), and at most Stripe's 5 minutes ahead.
 */
function timestampOf(value: unknown, now: Date): Date | { code: string; message: string } {
  if (value === undefined || value === null) return now;
  const at =
    typeof value === "number" && Number.isFinite(value)
      ? new Date(value * 1000)
      : typeof value === "string" && /^\d{4}-\d{2}-\d{2}T/.test(value)
        ? new Date(value)
        : undefined;
  if (!at || Number.isNaN(at.getTime()))
    return { code: "invalid_value", message: "'timestamp' must be an ISO 8601 date-time or Unix seconds" };
  if (at < oldestAccepted(now)) {
    const message = `'timestamp' is too old to be reported to Stripe: the oldest accepted now is ${oldestAccepted(now).toISOString()}`;
    return { code: "timestamp_out_of_range", message };
  }
  if (at.getTime() > now.getTime() + STRIPE_METER_MAX_AHEAD_MS)
    return { code: "timestamp_out_of_range", message: "'timestamp' is in the future" };
  return at;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}
