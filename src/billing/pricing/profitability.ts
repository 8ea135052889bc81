import type { Db } from "../../platform/db.js";
import { periodCharge } from "./period-charge.js";
import type { Period } from "../ledger/periods.js";
import { listPlans } from "./plans.js";
import { exactSum } from "../ledger/usage-bounds.js";
import { usageSource } from "../ledger/usage-totals.js";

export interface ProfitabilityRow {
  customerId: string;
  name: string;
  planId: string;
  requests: number;
  billableTokens: number;
  providerCostMicros: number;
  revenueMicros: number;
  /** revenue ÷ provider cost; null when nothing cost anything. */
  multiple: number | null;
  flagged: boolean;
}

/**
 * Each customer's requests, tokens and provider cost in the period, from the hourly rollup (and the
 * ledger rows of partial edge hours: usage-totals.ts); its plan is that of its latest row (one
 * index probe per customer).
 */
async function periodTotals(db: Db, period: Period): Promise<Array<Record<string, unknown>>> {
  return db
    .from(usageSource(db, period, { alias: "h" }))
    .join("customers as c", "c.id", "h.customer_id")
    .groupBy("h.customer_id", "c.name")
    .select(
      "h.customer_id",
      "c.name",
      db.raw(
        `(SELECT u.plan_id FROM usage_events u
          WHERE u.customer_id = h.customer_id AND u.created_at >= ? AND u.created_at < ?
          ORDER BY u.created_at DESC, u.id DESC LIMIT 1) AS plan_id`,
        [period.start, period.end],
      ),
    )
    .sum({ requests: "h.requests", tokens: "h.billable_tokens", cost: "h.provider_cost_micros" });
}

/**
 * Per customer with usage in the period: what it cost us, what its plan charges (base fee +
 * overage, README rounding policy) and the margin multiple, worst first. Flagged when the multiple
 * is under the target. A customer is charged by the plan of its latest row in the period.
 */
export async function profitability(
  db: Db,
  period: Period,
  targetHundredths: number,
): Promise<ProfitabilityRow[]> {
  const rows = await periodTotals(db, period);
  const plans = new Map((await listPlans(db)).map((p) => [p.id, p]));
  return rows
    .map((r) => {
      const plan = plans.get(String(r.plan_id))!;
      const cost = exactSum(r.cost as string, `${String(r.customer_id)}'s provider cost in micros`);
      const tokens = exactSum(r.tokens as string, `${String(r.customer_id)}'s billable tokens`);
      const revenue = periodCharge(plan, tokens).totalMicros;
      return {
        customerId: String(r.customer_id),
        name: String(r.name),
        planId: plan.id,
        requests: Number(r.requests),
        billableTokens: tokens,
        providerCostMicros: cost,
        revenueMicros: revenue,
        multiple: cost === 0 ? null : revenue / cost,
        // Integers only: revenue / cost < target ⇔ revenue × 100 < target × cost.
        flagged: cost > 0 && revenue * 100 < targetHundredths * cost,
      };
    })
    .sort((a, b) => (a.multiple ?? Infinity) - (b.multiple ?? Infinity));
}
