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

export interface TokenUsage {
  promptTokens: number; // includes cachedTokens
  cachedTokens: number;
  completionTokens: number; // includes reasoningTokens
  reasoningTokens: number;
}

/**
 * The price in force for a model at a time. Dated snapshots ("gpt-4o-mini-2024-07-18") use their
 * family's price: the longest known name that prefixes the model wins.
 */
export function priceFor(model: string, at: Date = new Date(), table: readonly ModelPrice[] = MODEL_PRICES) {
  const day = utcDay(at);
  let best: ModelPrice | undefined;
  for (const price of table) {
    const matches = model === price.model || model.startsWith(`${price.model}-`);
    if (!matches || price.effectiveFrom > day) continue;
    if (
      !best ||
      price.model.length > best.model.length ||
      (price.model === best.model && price.effectiveFrom > best.effectiveFrom)
    ) {
      best = price;
    }
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
 * The price of a model from the table, else the operator's configured default price
 * (`DEFAULT_MODEL_PRICE`), else undefined: the caller refuses the model.
 */
export function resolvePrice(
  model: string,
  fallback: DefaultPrice | undefined,
  at: Date = new Date(),
): ModelPrice | undefined {
  const known = priceFor(model, at);
  if (known || !fallback) return known;
  return { model, effectiveFrom: "1970-01-01", ...fallback };
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
