import { readFileSync } from "node:fs";
import { z } from "zod";
import snapshotFile from "./price-snapshot.json" with { type: "json" };

/**
 * Provider rates per 1M tokens in micro-dollars, by token kind (README "Usage taxonomy"). A kind
 * whose rate is absent costs what its parent does: cache writes the input rate (OpenAI and Gemini
 * charge no premium for writing their cache), reasoning the output rate.
 */
export interface Rates {
  inputPerM: number;
  /** Cache-read input. */
  cachedInputPerM: number;
  /** Cache-write (cache creation) input. */
  cacheWritePerM?: number;
  outputPerM: number;
  /** Reasoning (thinking) output, where it differs from output. */
  reasoningPerM?: number;
}

/** Service tiers priced apart from the standard one (OpenAI's `service_tier`). */
export type ServiceTier = "priority" | "flex";

/** A model's rates, valid from its effective date (UTC) until the next price of the same model. */
export interface ModelPrice extends Rates {
  model: string;
  effectiveFrom: string; // ISO date, UTC
  /** Rates of a whole request whose prompt is above a size (Gemini 2.5 Pro, Claude long context). */
  longContext?: Rates & { abovePromptTokens: number };
  /** Rates of the service tiers the provider charges differently; a tier absent here is refused. */
  serviceTiers?: Partial<Record<ServiceTier, Rates>>;
}

// Integer micro-dollars per 1M tokens, at most $1,000: a sanity bound on a mistyped rate.
const perM = z.number().int().nonnegative().max(1_000_000_000);
const ratesSchema = z.strictObject({
  inputPerM: perM,
  cachedInputPerM: perM,
  cacheWritePerM: perM.optional(),
  outputPerM: perM,
  reasoningPerM: perM.optional(),
});
const priceSchema = z.strictObject({
  ...ratesSchema.shape,
  model: z.string().min(1).max(256),
  effectiveFrom: z.string().regex(/^\d{4}-\d{2}-\d{2}$/, "effectiveFrom must be YYYY-MM-DD"),
  longContext: z
    .strictObject({ ...ratesSchema.shape, abovePromptTokens: z.number().int().positive() })
    .optional(),
  serviceTiers: z.strictObject({ priority: ratesSchema.optional(), flex: ratesSchema.optional() }).optional(),
});

/** The shape of the snapshot and of an override file: `{ "prices": [ModelPrice, …] }`. */
export const priceFileSchema = z.object({ source: z.string().optional(), prices: z.array(priceSchema) });

/**
 * The prices of the provider table's models as `npm run prices:snapshot` took them from
 * `@pydantic/genai-prices` (scripts/prices-snapshot.ts); committed, so runtime needs no network.
 */
export const SNAPSHOT_PRICES: readonly ModelPrice[] = priceFileSchema.parse(snapshotFile).prices;

/**
 * The prices in force in this process: the snapshot with the operator's overrides on top
 * (installPriceOverrides, called once by the composition root). Read by every price lookup.
 */
export const MODEL_PRICES: ModelPrice[] = [...SNAPSHOT_PRICES];

/**
 * The snapshot's prices with overrides winning: an override replaces the price of the same model
 * and effective date, and adds any other (a new model, or a new price from a later date).
 */
export function withOverrides(base: readonly ModelPrice[], overrides: readonly ModelPrice[]): ModelPrice[] {
  const key = (p: ModelPrice) => `${p.model}\u0000${p.effectiveFrom}`;
  const replaced = new Set(overrides.map(key));
  return [...base.filter((p) => !replaced.has(key(p))), ...overrides];
}

/** Puts the operator's overrides (MODEL_PRICES_FILE) in force for this process, on the snapshot. */
export function installPriceOverrides(overrides: readonly ModelPrice[]): void {
  MODEL_PRICES.splice(0, MODEL_PRICES.length, ...withOverrides(SNAPSHOT_PRICES, overrides));
}

/** Reads and validates an override file; the error names the file and the first wrong field. */
export function readPriceFile(path: string): ModelPrice[] {
  let json: unknown;
  try {
    json = JSON.parse(readFileSync(path, "utf8"));
  } catch (err) {
    throw new Error(`${path}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
  const parsed = priceFileSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new Error(`${path}: ${issue.path.join(".") || "(file)"}: ${issue.message}`);
  }
  return parsed.data.prices;
}

/**
 * Other names of priced models: dated snapshots that the provider bills exactly as the model they
 * pin. Listed one by one on purpose: a variant the table does not describe (`gpt-4o-audio-preview`,
 * `gpt-4o-search-preview`, `o4-mini-deep-research`, an older snapshot at another price such as
 * `gpt-4o-2024-05-13`) is priced differently and must not borrow its family's price. The provider
 * table (src/llm/providers.ts) routes an alias to the provider of the model it names.
 */
export const MODEL_ALIASES: Readonly<Record<string, string>> = {
  "gpt-4o-mini-2024-07-18": "gpt-4o-mini",
  "gpt-4o-2024-08-06": "gpt-4o",
  "gpt-4o-2024-11-20": "gpt-4o",
  "gpt-4.1-mini-2025-04-14": "gpt-4.1-mini",
  "gpt-4.1-2025-04-14": "gpt-4.1",
  "o4-mini-2025-04-16": "o4-mini",
  "claude-sonnet-4-5-20250929": "claude-sonnet-4-5",
  "claude-haiku-4-5-20251001": "claude-haiku-4-5",
  "claude-opus-4-1-20250805": "claude-opus-4-1",
  "gemini-2.5-flash-preview-09-2025": "gemini-2.5-flash",
};

/** What a usage row's `price_model` says when the operator's DEFAULT_MODEL_PRICE was applied. */
export const DEFAULT_PRICE_MODEL = "default";

/** A request's usage in the ledger's taxonomy (README "Usage taxonomy"). */
export interface TokenUsage {
  promptTokens: number; // all input: includes cachedTokens and cacheWriteTokens
  cachedTokens: number; // cache reads
  cacheWriteTokens: number; // cache writes
  completionTokens: number; // all output: includes reasoningTokens
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
 * The rates a request is charged at: its service tier's when it ran in one the price lists, the
 * long-context rates when its prompt is above their threshold, else the standard rates.
 */
export function ratesFor(price: ModelPrice, usage: TokenUsage, serviceTier?: ServiceTier): Rates {
  const tier = serviceTier && price.serviceTiers?.[serviceTier];
  if (tier) return tier;
  const long = price.longContext;
  return long && usage.promptTokens > long.abovePromptTokens ? long : price;
}

/**
 * Provider cost in micro-dollars, rounded half up once per request. Cache reads and writes are
 * subsets of prompt tokens, each priced at its own rate and the rest at the input rate; reasoning
 * tokens are inside completion tokens, at the reasoning rate where one is set. No token is priced
 * twice: the kinds partition the prompt and the completion.
 */
export function providerCostMicros(usage: TokenUsage, price: ModelPrice, serviceTier?: ServiceTier): number {
  const rates = ratesFor(price, usage, serviceTier);
  const plainInput = usage.promptTokens - usage.cachedTokens - usage.cacheWriteTokens;
  const plainOutput = usage.completionTokens - usage.reasoningTokens;
  const scaled =
    plainInput * rates.inputPerM +
    usage.cachedTokens * rates.cachedInputPerM +
    usage.cacheWriteTokens * (rates.cacheWritePerM ?? rates.inputPerM) +
    plainOutput * rates.outputPerM +
    usage.reasoningTokens * (rates.reasoningPerM ?? rates.outputPerM);
  return divRoundHalfUp(scaled, 1_000_000);
}

/** Integer division of non-negative integers, rounding half up. */
export function divRoundHalfUp(numerator: number, denominator: number): number {
  return Math.floor((2 * numerator + denominator) / (2 * denominator));
}
