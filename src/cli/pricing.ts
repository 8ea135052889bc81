import { formatMicros, parseHundredths } from "../billing/pricing/money.js";
import { calendarMonth, parseMonth } from "../billing/ledger/periods.js";
import { quotePrice } from "../billing/pricing/pricing-quote.js";
import { priceFor } from "../billing/pricing/prices.js";
import { profitability } from "../billing/pricing/profitability.js";
import { seedDemoData } from "../billing/customers/demo-data.js";
import { optionalFlag, requireFlag, type CliContext } from "./context.js";
import { UsageError } from "../errors.js";

function percentFlag(ctx: CliContext, name: string, fallback: number): number {
  const value = optionalFlag(ctx, name) ?? String(fallback);
  if (!/^\d{1,3}$/.test(value) || Number(value) > 100)
    throw new UsageError(`--${name} must be a whole percentage 0–100`);
  return Number(value);
}

function multipleFlag(ctx: CliContext, name: string, fallback: string): number {
  const value = parseHundredths(optionalFlag(ctx, name) ?? fallback);
  if (value === undefined || value === 0)
    throw new UsageError(`--${name} must be a positive number like 4 or 3.5`);
  return value;
}

export async function pricingQuote(ctx: CliContext): Promise<void> {
  const model = requireFlag(ctx, "model");
  const price = priceFor(model);
  if (!price) throw new UsageError(`no price for model "${model}" in the price table`);
  const cachedSharePct = percentFlag(ctx, "cached-share", 0);
  const cacheWriteSharePct = percentFlag(ctx, "cache-write-share", 0);
  if (cachedSharePct + cacheWriteSharePct > 100)
    throw new UsageError("--cached-share and --cache-write-share together must be at most 100");
  const quote = quotePrice({
    price,
    marginHundredths: multipleFlag(ctx, "margin", "4"),
    inputSharePct: percentFlag(ctx, "input-share", 75),
    cachedSharePct,
    cacheWriteSharePct,
  });
  ctx.print(quote.steps.join("\n"), { model, ...quote });
}

export async function profitabilityReport(ctx: CliContext): Promise<void> {
  const text = optionalFlag(ctx, "period");
  const period = text === undefined ? calendarMonth(new Date()) : parseMonth(text);
  if (!period) throw new UsageError("--period must be YYYY-MM");
  const target = multipleFlag(ctx, "target", "3");
  const rows = await profitability(ctx.db(), period, target);
  const month = period.start.toISOString().slice(0, 7);
  const lines = [
    `profitability ${month} (UTC), target ${target / 100}×`,
    `${"customer".padEnd(32)} ${"plan".padEnd(8)} ${"tokens".padStart(12)} ${"cost".padStart(10)} ${"revenue".padStart(10)} ${"multiple".padStart(8)}`,
    ...rows.map(
      (r) =>
        `${r.name.slice(0, 32).padEnd(32)} ${r.planId.padEnd(8)} ${String(r.billableTokens).padStart(12)} ${formatMicros(r.providerCostMicros, 2).padStart(10)} ${formatMicros(r.revenueMicros, 2).padStart(10)} ${(r.multiple === null ? "∞" : `${r.multiple.toFixed(2)}×`).padStart(8)}${r.flagged ? "  ⚠ under target" : ""}`,
    ),
    `${rows.filter((r) => r.flagged).length} of ${rows.length} customers under ${target / 100}×`,
  ];
  ctx.print(lines.join("\n"), { period: month, targetMultiple: target / 100, customers: rows });
}

export async function demoSeed(ctx: CliContext): Promise<void> {
  const result = await seedDemoData(ctx.db());
  ctx.print(`demo data: ${result.customers} customers, ${result.rows} new usage rows this month`, result);
}
