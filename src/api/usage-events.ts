import { listPriceMicros, type Plan } from "../billing/pricing/plans.js";
import { providerCostMicros, resolvePrice, type DefaultPrice } from "../billing/pricing/prices.js";
import { MAX_MICROS_PER_EVENT, MAX_TOKENS_PER_EVENT } from "../billing/ledger/usage-bounds.js";
import {
  oldestAccepted,
  periodClosed,
  STRIPE_METER_MAX_AHEAD_MS,
} from "../billing/reporting/report-deadlines.js";

export const MAX_EVENTS_PER_BATCH = 1_000;

/** A usage event that passed validation, normalized. */
export interface ValidUsageEvent {
  /** Position in the posted batch. */
  index: number;
  id: string;
  model: string;
  promptTokens: number;
  cachedTokens: number;
  completionTokens: number;
  reasoningTokens: number;
  timestamp: Date;
}

export interface UsageEventError {
  index: number;
  id: string | null;
  param: string | null;
  code: string;
  message: string;
}

class Invalid extends Error {
  constructor(
    readonly code: string,
    readonly param: string | null,
    message: string,
  ) {
    super(message);
  }
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
  const now = options.now ?? new Date();
  const valid: ValidUsageEvent[] = [];
  const errors: UsageEventError[] = [];
  const seen = new Set<string>();
  events.forEach((raw, index) => {
    const id = isRecord(raw) && typeof raw.id === "string" ? raw.id : null;
    try {
      const event = { index, ...validateEvent(raw, now, options.defaultPrice, options.plan) };
      if (seen.has(event.id))
        throw new Invalid("duplicate_id", "id", `id '${event.id}' appears earlier in this batch`);
      seen.add(event.id);
      valid.push(event);
    } catch (err) {
      if (!(err instanceof Invalid)) throw err;
      const param = err.param === null ? null : `events[${index}].${err.param}`;
      errors.push({ index, id, param, code: err.code, message: err.message });
    }
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

function validateEvent(
  raw: unknown,
  now: Date,
  defaultPrice: DefaultPrice | undefined,
  plan: Pick<Plan, "overagePer1kMicros"> | undefined,
): Omit<ValidUsageEvent, "index"> {
  if (!isRecord(raw)) throw new Invalid("invalid_event", null, "each event must be a JSON object");
  const id = raw.id;
  if (id === undefined) throw new Invalid("missing_required_parameter", "id", "'id' is required");
  if (typeof id !== "string" || id.length < 1 || id.length > 255)
    throw new Invalid("invalid_value", "id", "'id' must be a string of 1–255 characters");
  if (typeof raw.model !== "string" || raw.model === "")
    throw new Invalid("invalid_value", "model", "'model' must be a non-empty string");
  const promptTokens = tokens(raw, "prompt_tokens", true);
  const completionTokens = tokens(raw, "completion_tokens", true);
  const cachedTokens = tokens(raw, "cached_tokens", false);
  const reasoningTokens = tokens(raw, "reasoning_tokens", false);
  if (cachedTokens > promptTokens)
    throw new Invalid("invalid_value", "cached_tokens", "'cached_tokens' cannot exceed 'prompt_tokens'");
  if (reasoningTokens > completionTokens)
    throw new Invalid(
      "invalid_value",
      "reasoning_tokens",
      "'reasoning_tokens' cannot exceed 'completion_tokens'",
    );
  const timestamp = timestampOf(raw.timestamp, now);
  const price = resolvePrice(raw.model, defaultPrice, timestamp);
  if (!price)
    throw new Invalid(
      "model_not_found",
      "model",
      `the model '${raw.model}' does not exist or has no price configured`,
    );
  const usage = { promptTokens, cachedTokens, completionTokens, reasoningTokens };
  // Bounded so no row, and no sum of a customer's rows, can overflow when priced or reported.
  const micros = Math.max(
    providerCostMicros(usage, price),
    plan ? listPriceMicros(plan, promptTokens + completionTokens) : 0,
  );
  if (micros > MAX_MICROS_PER_EVENT)
    throw new Invalid(
      "cost_out_of_range",
      null,
      `the event costs more than the maximum of ${MAX_MICROS_PER_EVENT} micro-dollars per event at the price of '${raw.model}'; split it into smaller events`,
    );
  return { id, model: raw.model, ...usage, timestamp };
}

function tokens(raw: Record<string, unknown>, name: string, required: boolean): number {
  const value = raw[name];
  if (value === undefined || value === null) {
    if (required) throw new Invalid("missing_required_parameter", name, `'${name}' is required`);
    return 0;
  }
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 0)
    throw new Invalid("invalid_value", name, `'${name}' must be a non-negative integer`);
  if (value > MAX_TOKENS_PER_EVENT)
    throw new Invalid(
      "tokens_out_of_range",
      name,
      `'${name}' is at most ${MAX_TOKENS_PER_EVENT} per event; split larger usage into several events`,
    );
  return value;
}

/**
 * ISO 8601 text or Unix seconds; young enough to reach Stripe's 35-day window after the flush and
 * the report's retries (see report-deadlines.ts), and at most Stripe's 5 minutes ahead.
 */
function timestampOf(value: unknown, now: Date): Date {
  if (value === undefined || value === null) return now;
  const at =
    typeof value === "number" && Number.isFinite(value)
      ? new Date(value * 1000)
      : typeof value === "string" && /^\d{4}-\d{2}-\d{2}T/.test(value)
        ? new Date(value)
        : undefined;
  if (!at || Number.isNaN(at.getTime()))
    throw new Invalid(
      "invalid_value",
      "timestamp",
      "'timestamp' must be an ISO 8601 date-time or Unix seconds",
    );
  if (at < oldestAccepted(now))
    throw new Invalid(
      "timestamp_out_of_range",
      "timestamp",
      `'timestamp' is too old to be reported to Stripe: the oldest accepted now is ${oldestAccepted(now).toISOString()}`,
    );
  if (at.getTime() > now.getTime() + STRIPE_METER_MAX_AHEAD_MS)
    throw new Invalid("timestamp_out_of_range", "timestamp", "'timestamp' is in the future");
  return at;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}
