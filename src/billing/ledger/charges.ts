import type { Knex } from "knex";
import { consumeCredits } from "../credits/consume.js";
import { spendableMicros } from "../credits/balance.js";
import { listPriceMicros, type Plan } from "../pricing/plans.js";
import { addToHourlyUsage } from "./hourly-usage.js";
import { addToDailyUsage } from "./hourly-usage.js";

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

export interface ChargedRow {
  requestId: string;
  customerId: string;
  billableTokens: number;
  pricing: RowPricing;
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

const ROW_PERIODS = `
  SELECT u.id, u.request_id, u.customer_id, u.billable_tokens, ${rowPeriodColumns("u.created_at")}
  FROM usage_events u ${rowPeriodJoin("u.customer_id", "u.created_at")}
  WHERE u.request_id = ANY(:ids)`;

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
 * Adds the rows (just inserted, in this transaction) to their customers' period totals, and returns
 * for each row the customer's period total before it.
 */
async function addToPeriodTotals(trx: Knex.Transaction, ids: readonly string[]) {
  const { rows } = await trx.raw<{ rows: Array<{ request_id: string; before: string; tokens: string }> }>(
    `WITH r AS (${ROW_PERIODS}),
     g AS (${addToPeriodTotalsSql("r")})
     SELECT r.request_id, r.billable_tokens AS tokens,
            g.after - sum(r.billable_tokens) OVER (
              PARTITION BY r.customer_id, r.period_start ORDER BY r.id
              ROWS BETWEEN CURRENT ROW AND UNBOUNDED FOLLOWING) AS before
     FROM r JOIN g ON g.customer_id = r.customer_id AND g.period_start = r.period_start
     ORDER BY r.id`,
    { ids: [...ids] },
  );
  return new Map(rows.map((r) => [r.request_id, Number(r.before)]));
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

/**
 * Prices rows just inserted in `trx` and pays them from credits where the customer has some — the
 * one place that decides who pays for a token. The rule (README "Credits"): every token past the
 * period's allowance is paid exactly once, by credits when the balance covers it at the moment its
 * row is written, otherwise on the invoice; a token credits paid is counted in `credit_tokens` and
 * never reported to Stripe. Rows come in the order they were inserted.
 */
export async function chargeRows(
  trx: Knex.Transaction,
  rows: readonly ChargedRow[],
): Promise<Map<string, RowCharge>> {
  const charges = new Map<string, RowCharge>();
  if (rows.length === 0) return charges;
  const before = await addToPeriodTotals(
    trx,
    rows.map((r) => r.requestId),
  );

  const customers = [...new Set(rows.map((r) => r.customerId))].sort();
  // Credit accounts, locked in customer order (after the period totals, as every ledger writer does).
  const accounts: string[] = await trx("credit_accounts")
    .whereIn("customer_id", customers)
    .orderBy("customer_id")
    .forUpdate()
    .pluck("customer_id");
  const balances = new Map<string, number>();
  for (const customerId of accounts) balances.set(customerId, await spendableMicros(trx, customerId));

  const paid: Array<{ requestId: string } & RowCharge> = [];
  for (const row of rows) {
    const start = before.get(row.requestId) ?? 0;
    const { includedTokens } = row.pricing;
    const overage = overageTokens(includedTokens, start, row.billableTokens);
    const chargeMicros = listPriceMicros(row.pricing, overage);
    let creditTokens = 0;
    let creditMicros = 0;
    const balance = balances.get(row.customerId);
    if (balance !== undefined && chargeMicros > 0 && balance > 0) {
      creditTokens = tokensAffordable(row.pricing, overage, balance);
      const wanted = listPriceMicros(row.pricing, creditTokens);
      if (wanted > 0) {
        const consumed = await consumeCredits(trx, {
          customerId: row.customerId,
          requestId: row.requestId,
          amountMicros: wanted,
        });
        creditMicros = consumed.coveredMicros;
        if (creditMicros < wanted) creditTokens = tokensAffordable(row.pricing, overage, creditMicros);
        balances.set(row.customerId, balance - creditMicros);
      }
    }
    const charge: RowCharge = {
      chargeMicros,
      creditTokens,
      creditMicros,
      creditBalanceMicros: balances.get(row.customerId) ?? null,
      allowanceRemainingTokens:
        includedTokens > 0 ? Math.max(0, includedTokens - start - row.billableTokens) : null,
    };
    charges.set(row.requestId, charge);
    if (chargeMicros > 0) paid.push({ requestId: row.requestId, ...charge });
  }

  if (paid.length > 0) {
    await trx.raw(
      `UPDATE usage_events u
       SET charge_micros = v.charge, credit_tokens = v.tokens, credit_micros = v.credit
       FROM unnest(CAST(:ids AS text[]), CAST(:charges AS bigint[]), CAST(:tokens AS bigint[]), CAST(:credits AS bigint[]))
         AS v(request_id, charge, tokens, credit)
       WHERE u.request_id = v.request_id`,
      {
        ids: paid.map((p) => p.requestId),
        charges: paid.map((p) => p.chargeMicros),
        tokens: paid.map((p) => p.creditTokens),
        credits: paid.map((p) => p.creditMicros),
      },
    );
  }
  // After the charges are set: the hourly rollup sums them.
  await addToHourlyUsage(
    trx,
    rows.map((r) => r.requestId),
  );
  await addToDailyUsage(trx, rows);
  return charges;
}
