import { resolvePrice, type DefaultPrice } from "../billing/prices.js";

export const MAX_EVENTS_PER_BATCH = 1_000;
const MAX_AGE_MS = 35 * 86_400_000;
// Clocks disagree a little; Stripe meter events allow the same 5 minutes.
const MAX_FUTURE_MS = 5 * 60_000;

/** A usage event that passed validation, normalized. */
export interface ValidUsageEvent {
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
  options: { defaultPrice: DefaultPrice | undefined; now?: Date },
): { valid: ValidUsageEvent[]; errors: UsageEventError[] } {
  const now = options.now ?? new Date();
  const valid: ValidUsageEvent[] = [];
  const errors: UsageEventError[] = [];
  const seen = new Set<string>();
  events.forEach((raw, index) => {
    const id = isRecord(raw) && typeof raw.id === "string" ? raw.id : null;
    try {
      const event = validateEvent(raw, now, options.defaultPrice);
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

function validateEvent(raw: unknown, now: Date, defaultPrice: DefaultPrice | undefined): ValidUsageEvent {
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
  if (!resolvePrice(raw.model, defaultPrice, timestamp))
    throw new Invalid(
      "model_not_found",
      "model",
      `the model '${raw.model}' does not exist or has no price configured`,
    );
  return { id, model: raw.model, promptTokens, cachedTokens, completionTokens, reasoningTokens, timestamp };
}

function tokens(raw: Record<string, unknown>, name: string, required: boolean): number {
  const value = raw[name];
  if (value === undefined || value === null) {
    if (required) throw new Invalid("missing_required_parameter", name, `'${name}' is required`);
    return 0;
  }
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < 0)
    throw new Invalid("invalid_value", name, `'${name}' must be a non-negative integer`);
  return value;
}

/** ISO 8601 text or Unix seconds; within the past 35 days and not in the future. */
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
  if (at.getTime() < now.getTime() - MAX_AGE_MS)
    throw new Invalid("timestamp_out_of_range", "timestamp", "'timestamp' is more than 35 days old");
  if (at.getTime() > now.getTime() + MAX_FUTURE_MS)
    throw new Invalid("timestamp_out_of_range", "timestamp", "'timestamp' is in the future");
  return at;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}
