import type { Db } from "../../platform/db.js";
import { periodCharge } from "./period-charge.js";
import type { Period } from "../ledger/periods.js";
import { listPlans } from "./plans.js";
import { exactSum } from "../ledger/usage-bounds.js";
import { isWholeDays } from "../ledger/hourly-usage.js";

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

const HOUR_MS = 3_600_000;
const isWholeHours = (p: Period) => p.start.getTime() % HOUR_MS === 0 && p.end.getTime() % HOUR_MS === 0;

/**
 * Each customer's requests, tokens and provider cost in a period of whole days (a calendar month)
 * from the daily rollup, or of whole hours from the hourly one; its plan is that of its latest row
 * (one index probe per customer).
 */
async function totalsFromRollup(db: Db, period: Period): Promise<Array<Record<string, unknown>>> {
  const [table, column] = isWholeDays(period) ? ["usage_daily", "day"] : ["usage_hourly", "hour"];
  const { rows } = await db.raw<{ rows: Array<Record<string, unknown>> }>(
    `SELECT h.customer_id, c.name, h.requests, h.tokens, h.cost,
            (SELECT u.plan_id FROM usage_events u
             WHERE u.customer_id = h.customer_id AND u.created_at >= :start AND u.created_at < :end
             ORDER BY u.created_at DESC, u.id DESC LIMIT 1) AS plan_id
     FROM (SELECT customer_id, sum(requests) AS requests, sum(billable_tokens) AS tokens, sum(provider_cost_micros) AS cost
           FROM ${table} WHERE ${column} >= :start AND ${column} < :end GROUP BY customer_id) h
     JOIN customers c ON c.id = h.customer_id`,
    { start: period.start, end: period.end },
  );
  return rows;
}

/** The same totals from the ledger rows, for a period that does not start and end on an hour. */
async function totalsFromLedger(db: Db, period: Period): Promise<Array<Record<string, unknown>>> {
  return db("usage_events as u")
    .join("customers as c", "c.id", "u.customer_id")
    .where("u.created_at", ">=", period.start)
    .where("u.created_at", "<", period.end)
    .groupBy("u.customer_id", "c.name")
    .select(
      "u.customer_id",
      "c.name",
      db.raw("(array_agg(u.plan_id ORDER BY u.created_at DESC, u.id DESC))[1] AS plan_id"),
    )
    .count({ requests: "*" })
    .sum({ tokens: "u.billable_tokens", cost: "u.provider_cost_micros" });
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
  const rows = isWholeHours(period) ? await totalsFromRollup(db, period) : await totalsFromLedger(db, period);
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
