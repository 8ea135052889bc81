import type { Plan } from "./plans.js";
import { divRoundHalfUp } from "./prices.js";

export interface PeriodCharge {
  includedTokens: number;
  includedUsedTokens: number;
  includedRemainingTokens: number;
  overageTokens: number;
  /** Of the overage, the tokens credits paid as they were used (src/billing/ledger/charges.ts). */
  creditTokens: number;
  /** What the invoice charges for the overage credits did not pay. */
  overageMicros: number;
  baseFeeMicros: number;
  totalMicros: number;
}

/**
 * What a plan charges for one period's billable tokens. Rounding policy (README "Plans and
 * pricing"): the allowance covers tokens 1..included exactly, so a request that crosses the
 * boundary is split and only its tokens past the allowance are overage; overage is priced per token
 * at the per-1K rate and rounded half up to a whole micro-dollar once, on the period total — never
 * per request and never up to a whole 1K block. Tokens credits paid (`creditTokens`, all past the
 * allowance) are not charged again: the invoice carries the rest.
 */
export function periodCharge(plan: Plan, billableTokens: number, creditTokens = 0): PeriodCharge {
  const includedUsedTokens = Math.min(billableTokens, plan.includedTokens);
  const overageTokens = billableTokens - includedUsedTokens;
  const invoicedTokens = Math.max(0, overageTokens - creditTokens);
  const overageMicros = divRoundHalfUp(invoicedTokens * plan.overagePer1kMicros, 1000);
  return {
    includedTokens: plan.includedTokens,
    includedUsedTokens,
    includedRemainingTokens: plan.includedTokens - includedUsedTokens,
    overageTokens,
    creditTokens,
    overageMicros,
    baseFeeMicros: plan.baseFeeMicros,
    totalMicros: plan.baseFeeMicros + overageMicros,
  };
}
