import { invoicedPer1kMicros, type Plan } from "./plans.js";
import { divRoundHalfUp } from "./prices.js";

export interface PeriodCharge {
  includedTokens: number;
  includedUsedTokens: number;
  includedRemainingTokens: number;
  overageTokens: number;
  overageMicros: number;
  baseFeeMicros: number;
  totalMicros: number;
}

/**
 * What a plan charges for one period's billable tokens. Rounding policy (README "Plans and
 * pricing"): the allowance covers tokens 1..included exactly, so a request that crosses the
 * boundary is split and only its tokens past the allowance are overage; overage is priced per token
 * at the per-1K rate and rounded half up to a whole micro-dollar once, on the period total — never
 * per request and never up to a whole 1K block. A prepaid plan's overage is paid by credits, so it
 * counts here at zero (invoicedPer1kMicros).
 */
export function periodCharge(plan: Plan, billableTokens: number): PeriodCharge {
  const includedUsedTokens = Math.min(billableTokens, plan.includedTokens);
  const overageTokens = billableTokens - includedUsedTokens;
  const overageMicros = divRoundHalfUp(overageTokens * invoicedPer1kMicros(plan), 1000);
  return {
    includedTokens: plan.includedTokens,
    includedUsedTokens,
    includedRemainingTokens: plan.includedTokens - includedUsedTokens,
    overageTokens,
    overageMicros,
    baseFeeMicros: plan.baseFeeMicros,
    totalMicros: plan.baseFeeMicros + overageMicros,
  };
}
