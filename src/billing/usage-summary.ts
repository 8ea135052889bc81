import type { Db } from "../db.js";
import { periodCharge, type PeriodCharge } from "./period-charge.js";
import type { Period } from "./periods.js";
import type { Plan } from "./plans.js";

export interface TokenTotals {
  requests: number;
  promptTokens: number;
  cachedTokens: number;
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
  providerCostMicros: number;
}

/** A customer's usage in a period and what its plan charges for it, from the ledger. */
export async function usageSummary(
  db: Db,
  customerId: string,
  plan: Plan,
  period: Period,
): Promise<UsageSummary> {
  const rows: Array<Record<string, unknown>> = await db("usage_events")
    .where({ customer_id: customerId })
    .where("created_at", ">=", period.start)
    .where("created_at", "<", period.end)
    .groupBy("model")
    .orderBy("model")
    .select("model")
    .count({ requests: "*" })
    .sum({
      prompt: "prompt_tokens",
      cached: "cached_tokens",
      completion: "completion_tokens",
      reasoning: "reasoning_tokens",
      billable: "billable_tokens",
      cost: "provider_cost_micros",
    });
  const byModel = rows.map((r) => ({
    model: String(r.model),
    requests: Number(r.requests),
    promptTokens: Number(r.prompt),
    cachedTokens: Number(r.cached),
    completionTokens: Number(r.completion),
    reasoningTokens: Number(r.reasoning),
    billableTokens: Number(r.billable),
  }));
  const totals = byModel.reduce<TokenTotals>(
    (sum, m) => ({
      requests: sum.requests + m.requests,
      promptTokens: sum.promptTokens + m.promptTokens,
      cachedTokens: sum.cachedTokens + m.cachedTokens,
      completionTokens: sum.completionTokens + m.completionTokens,
      reasoningTokens: sum.reasoningTokens + m.reasoningTokens,
      billableTokens: sum.billableTokens + m.billableTokens,
    }),
    {
      requests: 0,
      promptTokens: 0,
      cachedTokens: 0,
      completionTokens: 0,
      reasoningTokens: 0,
      billableTokens: 0,
    },
  );
  const providerCostMicros = rows.reduce((sum, r) => sum + Number(r.cost), 0);
  return {
    period,
    plan,
    totals,
    byModel,
    charge: periodCharge(plan, totals.billableTokens),
    providerCostMicros,
  };
}
