/** Provider prices per 1M tokens in micro-dollars, each valid from its effective date. */
export interface ModelPrice {
  model: string;
  effectiveFrom: string; // ISO date, UTC
  inputPerM: number;
  cachedInputPerM: number;
  outputPerM: number;
}

export const MODEL_PRICES: readonly ModelPrice[] = [
  {
    model: "gpt-4o-mini",
    effectiveFrom: "2024-07-18",
    inputPerM: 150_000,
    cachedInputPerM: 75_000,
    outputPerM: 600_000,
  },
  {
    model: "gpt-4o",
    effectiveFrom: "2024-08-06",
    inputPerM: 2_500_000,
    cachedInputPerM: 1_250_000,
    outputPerM: 10_000_000,
  },
  {
    model: "gpt-4.1-mini",
    effectiveFrom: "2025-04-14",
    inputPerM: 400_000,
    cachedInputPerM: 100_000,
    outputPerM: 1_600_000,
  },
  {
    model: "gpt-4.1",
    effectiveFrom: "2025-04-14",
    inputPerM: 2_000_000,
    cachedInputPerM: 500_000,
    outputPerM: 8_000_000,
  },
  {
    model: "o4-mini",
    effectiveFrom: "2025-04-16",
    inputPerM: 1_100_000,
    cachedInputPerM: 275_000,
    outputPerM: 4_400_000,
  },
];

/**
 * Other names of priced models: dated snapshots that OpenAI bills exactly as the model they pin.
 * Listed one by one on purpose: a variant the table does not describe (`gpt-4o-audio-preview`,
 * `gpt-4o-search-preview`, `o4-mini-deep-research`, an older snapshot at another price such as
 * `gpt-4o-2024-05-13`) is priced differently and must not borrow its family's price.
 */
export const MODEL_ALIASES: Readonly<Record<string, string>> = {
  "gpt-4o-mini-2024-07-18": "gpt-4o-mini",
  "gpt-4o-2024-08-06": "gpt-4o",
  "gpt-4o-2024-11-20": "gpt-4o",
  "gpt-4.1-mini-2025-04-14": "gpt-4.1-mini",
  "gpt-4.1-2025-04-14": "gpt-4.1",
  "o4-mini-2025-04-16": "o4-mini",
};

/** What a usage row's `price_model` says when the operator's DEFAULT_MODEL_PRICE was applied. */
export const DEFAULT_PRICE_MODEL = "default";

export interface TokenUsage {
  promptTokens: number; // includes cachedTokens
  cachedTokens: number;
  completionTokens: number; // includes reasoningTokens
  reasoningTokens: number;
}

/**
 * The table's price in force for a model (or one of its MODEL_ALIASES) at a time; names match
 * exactly. The price's `model` is the priced name, e.g. "gpt-4o" for "gpt-4o-2024-08-06".
 */
export function priceFor(
  model: string,
  at: Date = new Date(),
  table: readonly ModelPrice[] = MODEL_PRICES,
  aliases: Readonly<Record<string, string>> = MODEL_ALIASES,
) {
  const name = Object.hasOwn(aliases, model) ? aliases[model]! : model;
  const day = utcDay(at);
  let best: ModelPrice | undefined;
  for (const price of table) {
    if (price.model !== name || price.effectiveFrom > day) continue;
    if (!best || price.effectiveFrom > best.effectiveFrom) best = price;
  }
  return best;
}

// The UTC day of `at` as YYYY-MM-DD. Every chat is priced on the request path: formatting a date per
// call showed in the web process's profile, so the current day's string is kept until the day ends.
const DAY_MS = 86_400_000;
let lastDay = { from: 0, to: 0, day: "" };
function utcDay(at: Date): string {
  const t = at.getTime();
  if (t < lastDay.from || t >= lastDay.to) {
    const from = Math.floor(t / DAY_MS) * DAY_MS;
    lastDay = { from, to: from + DAY_MS, day: new Date(from).toISOString().slice(0, 10) };
  }
  return lastDay.day;
}

export type DefaultPrice = Pick<ModelPrice, "inputPerM" | "cachedInputPerM" | "outputPerM">;

/**
 * The one model-name check of meterline, for the chat API, ingestion and the worker's pricing: the
 * table's price (exact name or explicit alias), else the operator's DEFAULT_MODEL_PRICE, whose
 * `model` is then DEFAULT_PRICE_MODEL, else undefined: the caller refuses the model. Usage rows
 * store the returned `model` as `price_model`, so a row says which price it was billed at.
 */
export function resolvePrice(
  model: string,
  fallback: DefaultPrice | undefined,
  at: Date = new Date(),
): ModelPrice | undefined {
  const known = priceFor(model, at);
  if (known || !fallback) return known;
  return { model: DEFAULT_PRICE_MODEL, effectiveFrom: "1970-01-01", ...fallback };
}

/**
 * Provider cost in micro-dollars, rounded half up once per request. Cached tokens are a subset of
 * prompt tokens and priced at the cached rate; reasoning tokens are already inside completion tokens.
 */
export function providerCostMicros(usage: TokenUsage, price: ModelPrice): number {
  const uncached = usage.promptTokens - usage.cachedTokens;
  const scaled =
    uncached * price.inputPerM +
    usage.cachedTokens * price.cachedInputPerM +
    usage.completionTokens * price.outputPerM;
  return divRoundHalfUp(scaled, 1_000_000);
}

/** Integer division of non-negative integers, rounding half up. */
export function divRoundHalfUp(numerator: number, denominator: number): number {
  return Math.floor((2 * numerator + denominator) / (2 * denominator));
}
