/**
 * `npm run prices:snapshot`: writes src/billing/pricing/price-snapshot.json from the price data of
 * the pinned `@pydantic/genai-prices` package (bundled in the package, read offline), for the
 * models of the provider table (src/llm/providers.ts) only. Run it after bumping the package, read
 * the diff, commit it: runtime reads the committed file and never the network.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { findProvider, type ModelInfo, type ModelPrice as SourcePrice } from "@pydantic/genai-prices";
import { MODEL_PROVIDERS, type Provider } from "../src/llm/providers.js";
import type { ModelPrice, Rates } from "../src/billing/pricing/prices.js";

// The package's id for each of our providers.
const SOURCE_PROVIDER: Record<Provider, string> = {
  openai: "openai",
  anthropic: "anthropic",
  gemini: "google",
};
// An unconditional price in the source has no date: it is taken as in force since always.
const SINCE_ALWAYS = "1970-01-01";

const OUT = fileURLToPath(new URL("../src/billing/pricing/price-snapshot.json", import.meta.url));

/** Dollars per 1M tokens → integer micro-dollars per 1M tokens. */
const micros = (dollars: number) => Math.round(dollars * 1_000_000);

type Tiered = { base: number; tiers: Array<{ start: number; price: number }> };
const isTiered = (v: unknown): v is Tiered => typeof v === "object" && v !== null && "base" in v;

/** The base rate of a source key, or undefined. */
function base(price: SourcePrice, key: string): number | undefined {
  const v = price[key];
  if (v === undefined) return undefined;
  return micros(isTiered(v) ? v.base : v);
}

/** The rates from a long-context tier on: the source prices a whole request above it at the tier rate. */
function longContext(price: SourcePrice): ModelPrice["longContext"] {
  const input = price.input_mtok;
  if (!isTiered(input) || input.tiers.length === 0) return undefined;
  if (input.tiers.length > 1) throw new Error("more than one long-context tier: extend ModelPrice first");
  const start = input.tiers[0]!.start;
  const tier = (key: string) => {
    const v = price[key];
    if (!isTiered(v)) return base(price, key);
    const t = v.tiers.find((x) => x.start === start);
    if (!t) throw new Error(`tier of ${key} does not start at ${start}`);
    return micros(t.price);
  };
  return { abovePromptTokens: start, ...rates(tier) };
}

/** Input, cache read, cache write and output; a missing cache rate is the input rate. */
function rates(rate: (key: string) => number | undefined): Rates {
  const inputPerM = rate("input_mtok");
  const outputPerM = rate("output_mtok");
  if (inputPerM === undefined || outputPerM === undefined) throw new Error("no input or output price");
  return {
    inputPerM,
    cachedInputPerM: rate("cache_read_mtok") ?? inputPerM,
    cacheWritePerM: rate("cache_write_mtok") ?? inputPerM,
    outputPerM,
  };
}

/** Every dated price of one model, oldest first. */
function pricesOf(model: string, info: ModelInfo): ModelPrice[] {
  const conditional = Array.isArray(info.prices) ? info.prices : [{ prices: info.prices }];
  return conditional.map((c) => {
    const constraint = "constraint" in c ? c.constraint : undefined;
    if (constraint && constraint.type !== "start_date") throw new Error(`${model}: time-of-day prices`);
    const long = longContext(c.prices);
    return {
      model,
      effectiveFrom: constraint?.type === "start_date" ? constraint.start_date.slice(0, 10) : SINCE_ALWAYS,
      ...rates((key) => base(c.prices, key)),
      ...(long ? { longContext: long } : {}),
    };
  });
}

function snapshot(): ModelPrice[] {
  return Object.entries(MODEL_PROVIDERS).flatMap(([model, provider]) => {
    const source = findProvider({ providerId: SOURCE_PROVIDER[provider] });
    const info = source?.models.find((m) => m.id === model);
    if (!info) throw new Error(`${model}: not in @pydantic/genai-prices for ${SOURCE_PROVIDER[provider]}`);
    return pricesOf(model, info);
  });
}

/** The installed package's version (its package.json is not exported: read beside its entry). */
function sourceVersion(): string {
  const entry = import.meta.resolve("@pydantic/genai-prices");
  const manifest = JSON.parse(readFileSync(new URL("../package.json", entry), "utf8")) as { version: string };
  return manifest.version;
}

const prices = snapshot();
const body = { source: `@pydantic/genai-prices@${sourceVersion()}`, prices };
writeFileSync(OUT, `${JSON.stringify(body, null, 2)}\n`);
console.log(`${prices.length} prices of ${Object.keys(MODEL_PROVIDERS).length} models → ${OUT}`);
