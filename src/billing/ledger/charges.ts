import { listPriceMicros, type Plan } from "../pricing/plans.js";

/** What prices a row: its plan's allowance and per-1K rate, as they stood when the row was written. */
export type RowPricing = Pick<Plan, "includedTokens" | "overagePer1kMicros">;

/** What one usage row adds to its customer's bill, and how it is paid. */
export interface RowCharge {
  /** The price of the row's tokens past the period's allowance, at the plan's rate. */
  chargeMicros: number;
  /** Tokens of the row paid by credits: never reported to Stripe, never on an invoice. */
  creditTokens: number;
  /** What credits paid: the price of `creditTokens`. */
  creditMicros: number;
  /** The customer's credit balance after this row; null when it has no credit account. */
  creditBalanceMicros: number | null;
  /** Tokens of the allowance left this period after this row; null when the plan has none. */
  allowanceRemainingTokens: number | null;
}

/**
 * The period a row at `at` counts in, as select-list columns `period_start, period_end`: its
 * customer's subscription period at that time (`p`, from rowPeriodJoin), else the UTC calendar
 * month (as src/billing/ledger/period-history.ts and the flush place rows).
 */
export function rowPeriodColumns(at: string): string {
  return `coalesce(p.period_start, date_trunc('month', ${at} AT TIME ZONE 'UTC') AT TIME ZONE 'UTC') AS period_start,
         coalesce(p.period_end, (date_trunc('month', ${at} AT TIME ZONE 'UTC') + interval '1 month') AT TIME ZONE 'UTC') AS period_end`;
}

/** The join that gives rowPeriodColumns its `p`: the latest subscription period holding `at`. */
export function rowPeriodJoin(customer: string, at: string): string {
  return `LEFT JOIN LATERAL (
    SELECT b.period_start, b.period_end FROM billing_periods b
    WHERE b.customer_id = ${customer} AND b.period_start <= ${at} AND b.period_end > ${at}
    ORDER BY b.period_start DESC LIMIT 1
  ) p ON true`;
}

/**
 * The upsert of the rows `from` (with customer_id, period_start, period_end, billable_tokens) into
 * their customers' period totals, returning each total after it as `after`. In customer order, so
 * concurrent writers lock totals in one order and never deadlock; the row lock then holds a
 * customer's other writers until commit, which is what makes "before" exact under concurrency.
 */
export function addToPeriodTotalsSql(from: string): string {
  return `INSERT INTO usage_period_totals AS t (customer_id, period_start, period_end, requests, billable_tokens)
       SELECT customer_id, period_start, period_end, count(*), sum(billable_tokens)
       FROM ${from} GROUP BY 1, 2, 3 ORDER BY 1, 2
       ON CONFLICT (customer_id, period_start) DO UPDATE
         SET requests = t.requests + excluded.requests, billable_tokens = t.billable_tokens + excluded.billable_tokens
       RETURNING t.customer_id, t.period_start, t.billable_tokens AS after`;
}

/**
 * The ledger writers' first steps, as CTEs after a relation `from` of rows (request_id,
 * customer_id, billable_tokens, at, ord): `claimed`, each request id claimed in `usage_requests`
 * (the exactly-once key; a repeat claims nothing); `r`, the claimed rows with their period; `totals`,
 * their periods' totals after them (addToPeriodTotalsSql); `placed`, each row with the total before
 * it (`before`, rows in `ord` order).
 */
export function claimAndPlaceSql(from: string): string {
  return `claimed AS (
       INSERT INTO usage_requests (request_id, created_at)
       SELECT request_id, at FROM ${from} ORDER BY ord
       ON CONFLICT (request_id) DO NOTHING
       RETURNING request_id
     ),
     r AS (
       SELECT x.*, ${rowPeriodColumns("x.at")}
       FROM ${from} x JOIN claimed c USING (request_id) ${rowPeriodJoin("x.customer_id", "x.at")}
     ),
     totals AS (${addToPeriodTotalsSql("r")}),
     placed AS (
       SELECT r.*,
              (t.after - sum(r.billable_tokens) OVER (
                PARTITION BY r.customer_id, r.period_start ORDER BY r.ord
                ROWS BETWEEN CURRENT ROW AND UNBOUNDED FOLLOWING))::bigint AS before
       FROM r JOIN totals t ON t.customer_id = r.customer_id AND t.period_start = r.period_start
     )`;
}

/** The allowance left after a row that brings the period to `after` tokens; null without an allowance. */
export function allowanceRemaining(includedTokens: number, after: number): number | null {
  return includedTokens > 0 ? Math.max(0, includedTokens - after) : null;
}

/** Tokens past the allowance among `tokens` written on top of `before` tokens this period. */
export function overageTokens(includedTokens: number, before: number, tokens: number): number {
  return Math.max(0, before + tokens - includedTokens) - Math.max(0, before - includedTokens);
}

/** The most of `tokens` whose price at the plan's rate is at most `micros`. */
export function tokensAffordable(pricing: RowPricing, tokens: number, micros: number): number {
  if (pricing.overagePer1kMicros === 0) return tokens;
  let affordable = Math.min(tokens, Math.floor((micros * 1000) / pricing.overagePer1kMicros));
  while (affordable < tokens && listPriceMicros(pricing, affordable + 1) <= micros) affordable++;
  return affordable;
}
