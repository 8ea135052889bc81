import { formatMicros } from "./money.js";
import { divRoundHalfUp, type ModelPrice } from "./prices.js";

export interface QuoteInput {
  price: ModelPrice;
  /** Margin multiple in hundredths: 400 = 4×. */
  marginHundredths: number;
  /** Share of tokens that are input (prompt) tokens, in percent. */
  inputSharePct: number;
  /** Share of input tokens served from the provider's cache, in percent. */
  cachedSharePct: number;
  /** Share of input tokens written to the provider's cache, in percent (at most 100 − cached). */
  cacheWriteSharePct?: number;
}

export interface Quote {
  blendedCostPer1M: number; // micros
  pricePer1M: number; // micros, cost × margin
  cleanPricePer1k: number; // micros, what to put on a plan's overage_per_1k_micros
  steps: string[];
}

/**
 * The seed's pricing method: blended provider cost per 1K tokens for a traffic mix, times a margin,
 * rounded UP to a clean price (two significant figures of micro-dollars per 1K), so rounding never
 * eats the margin.
 */
export function quotePrice(input: QuoteInput): Quote {
  const { price, marginHundredths: margin, inputSharePct: inPct, cachedSharePct: cachedPct } = input;
  const writePct = input.cacheWriteSharePct ?? 0;
  const cacheWritePerM = price.cacheWritePerM ?? price.inputPerM;
  const outPct = 100 - inPct;
  const blendedCostPer1M = divRoundHalfUp(
    inPct *
      ((100 - cachedPct - writePct) * price.inputPerM +
        cachedPct * price.cachedInputPerM +
        writePct * cacheWritePerM) +
      outPct * 100 * price.outputPerM,
    10_000,
  );
  const pricePer1M = divRoundHalfUp(blendedCostPer1M * margin, 100);
  const cleanPricePer1k = cleanUp(Math.ceil(pricePer1M / 1000));
  const per1k = (perM: number) => `${(perM / 1000).toFixed(3)} µ$`;
  const steps = [
    `prices per 1M tokens (${price.model}, from ${price.effectiveFrom}): input ${price.inputPerM} µ$, cache read ${price.cachedInputPerM} µ$, cache write ${cacheWritePerM} µ$, output ${price.outputPerM} µ$`,
    `mix: ${inPct}% input (${cachedPct}% of it read from cache, ${writePct}% written to it), ${outPct}% output`,
    `blended cost per 1K tokens: ${per1k(blendedCostPer1M)}`,
    `× margin ${margin / 100} = ${per1k(pricePer1M)} per 1K`,
    `rounded up to a clean price: ${cleanPricePer1k} µ$ per 1K tokens (${formatMicros(cleanPricePer1k * 1000, 2)} per 1M)`,
  ];
  return { blendedCostPer1M, pricePer1M, cleanPricePer1k, steps };
}

/** Rounds a positive integer up to two significant figures: 1,050 → 1,100; 787 → 790; 7 → 7. */
export function cleanUp(value: number): number {
  if (value <= 0) return 1;
  const step = 10 ** Math.max(0, String(value).length - 2);
  return Math.ceil(value / step) * step;
}
