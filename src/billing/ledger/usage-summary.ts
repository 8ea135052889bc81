import { addExact, exactSum } from "./usage-bounds.js";
import { usageSource } from "./usage-totals.js";
import type { Db } from "../../platform/db.js";
import { periodCharge, type PeriodCharge } from "../pricing/period-charge.js";
import type { Period } from "./periods.js";
import type { Plan } from "../pricing/plans.js";

export interface TokenTotals {
  requests: number;
  promptTokens: number;
  cachedTokens: number;
  cacheWriteTokens: number;
  completionTokens: number;
  reasoningTokens: number;
  billableTokens: number;
}

export interface UsageSummary {
  period: Period;
  plan: Plan;
  totals: TokenTotals;
  byModel: Array<TokenTotals & { model: string }>;
  charge: PeriodCharge;
  /** The period's usage charges (tokens past the allowance) and what credits paid of them. */
  credits: { paidTokens: number; paidMicros: number; chargedMicros: number };
  providerCostMicros: number;
}

/**
 * A customer's usage in a period and what its plan charges for it, from the hourly rollup (and the
 * ledger rows of a period's partial edge hours: usage-totals.ts), so no customer's rows are scanned.
 */
export async function usageSummary(
  db: Db,
  customerId: string,
  plan: Plan,
  period: Period,
): Promise<UsageSummary> {
  const rows: Array<Record<string, unknown>> = await db
    .from(usageSource(db, period, { customerId }))
    .groupBy("model")
    .orderBy("model")
    .select("model")
    .sum({
      requests: "requests",
      prompt: "prompt_tokens",
      cached: "cached_tokens",
      cacheWrite: "cache_write_tokens",
      completion: "completion_tokens",
      reasoning: "reasoning_tokens",
      billable: "billable_tokens",
      credit: "credit_tokens",
      charge: "charge_micros",
      credits: "credit_micros",
      cost: "provider_cost_micros",
    });
  const exact = (r: Record<string, unknown>, column: string) =>
    exactSum(r[column] as string, `${customerId}'s ${column} tokens of ${String(r.model)}`);
  const byModel = rows.map((r) => ({
    model: String(r.model),
    requests: Number(r.requests),
    promptTokens: exact(r, "prompt"),
    cachedTokens: exact(r, "cached"),
    cacheWriteTokens: exact(r, "cacheWrite"),
    completionTokens: exact(r, "completion"),
    reasoningTokens: exact(r, "reasoning"),
    billableTokens: exact(r, "billable"),
  }));
  const totals = byModel.reduce<TokenTotals>(
    (sum, m) => ({
      requests: sum.requests + m.requests,
      promptTokens: addExact(sum.promptTokens, m.promptTokens, `${customerId}'s prompt tokens`),
      cachedTokens: addExact(sum.cachedTokens, m.cachedTokens, `${customerId}'s cached tokens`),
      cacheWriteTokens: addExact(
        sum.cacheWriteTokens,
        m.cacheWriteTokens,
        `${customerId}'s cache-write tokens`,
      ),
      completionTokens: addExact(
        sum.completionTokens,
        m.completionTokens,
        `${customerId}'s completion tokens`,
      ),
      reasoningTokens: addExact(sum.reasoningTokens, m.reasoningTokens, `${customerId}'s reasoning tokens`),
      billableTokens: addExact(sum.billableTokens, m.billableTokens, `${customerId}'s billable tokens`),
    }),
    {
      requests: 0,
      promptTokens: 0,
      cachedTokens: 0,
      cacheWriteTokens: 0,
      completionTokens: 0,
      reasoningTokens: 0,
      billableTokens: 0,
    },
  );
  const sumOf = (column: string) =>
    rows.reduce<number>((sum, r) => addExact(sum, exact(r, column), `${customerId}'s ${column}`), 0);
  const providerCostMicros = sumOf("cost");
  return {
    period,
    plan,
    totals,
    byModel,
    charge: periodCharge(plan, totals.billableTokens, sumOf("credit")),
    credits: { paidTokens: sumOf("credit"), paidMicros: sumOf("credits"), chargedMicros: sumOf("charge") },
    providerCostMicros,
  };
}
