import type { Db } from "../../platform/db.js";
import type { UsageRow } from "./ledger.js";
import type { RowCharge } from "./charges.js";
import { SUMMED } from "./hourly-usage.js";

/** What writePlainRows did: the charges of the rows it inserted, and the rows it left to the caller. */
export interface PlainWritten {
  /** Request ids this call inserted, each with its charge. */
  charges: Map<string, RowCharge>;
  /** Request ids it did not write because their customer has a credit account (charges.ts pays those). */
  withCredits: Set<string>;
  /** Request ids already in the ledger: nothing was written for them. */
  repeats: Set<string>;
}

// The rows as columns, one array each (unnest), in the order they were given.
const INPUT = `
  SELECT * FROM unnest(
    CAST(:requestIds AS text[]), CAST(:customerIds AS text[]), CAST(:models AS text[]),
    CAST(:promptTokens AS bigint[]), CAST(:cachedTokens AS bigint[]), CAST(:cacheWriteTokens AS bigint[]),
    CAST(:completionTokens AS bigint[]), CAST(:reasoningTokens AS bigint[]), CAST(:billableTokens AS bigint[]),
    CAST(:providerCosts AS bigint[]), CAST(:prices AS bigint[]), CAST(:sources AS text[]), CAST(:planIds AS text[]),
    CAST(:priceModels AS text[]), CAST(:endUsers AS text[]), CAST(:createdAts AS timestamptz[]),
    CAST(:included AS bigint[]), CAST(:rates AS bigint[])
  ) WITH ORDINALITY AS v(request_id, customer_id, model, prompt_tokens, cached_tokens, cache_write_tokens,
    completion_tokens, reasoning_tokens, billable_tokens, provider_cost_micros, price_micros, source, plan_id,
    price_model, end_user, created_at, included_tokens, overage_per_1k_micros, ord)`;

const COLUMNS = [
  "request_id",
  "customer_id",
  "model",
  "prompt_tokens",
  "cached_tokens",
  "cache_write_tokens",
  "completion_tokens",
  "reasoning_tokens",
  "billable_tokens",
  "provider_cost_micros",
  "price_micros",
  "source",
  "plan_id",
  "price_model",
  "end_user",
  "created_at",
  "charge_micros",
].join(", ");

/**
 * The whole ledger write of rows whose customers have no credit account, as ONE statement (one
 * round trip, its own transaction): claim each request id in `usage_requests`, add the rows to their
 * period totals, price them past the allowance from the totals before them, insert them with their
 * charge, and add them to the hourly and daily rollups. It does what `insertNew` + `chargeRows` do
 * for such rows — the same period, the same rounding, the same lock order (request id, then period
 * totals and rollups in key order) — in one trip instead of eight.
 *
 * Rows of a customer with a credit account are not written: credits are paid row by row under the
 * account's lock (charges.ts), and those rows go that way. A credit account made after this
 * statement's snapshot pays from the next row on, as it would for a row whose transaction had
 * already locked the accounts. `rows` must not repeat a request id.
 */
export async function writePlainRows(db: Db, rows: readonly UsageRow[]): Promise<PlainWritten> {
  const { rows: out } = await db.raw<{
    rows: Array<{
      request_id: string;
      state: "charged" | "credits" | "repeat";
      charge_micros: string | null;
      before: string | null;
      included_tokens: string;
      billable_tokens: string;
    }>;
  }>(
    `WITH v AS (${INPUT}),
     plain AS (
       SELECT v.*, coalesce(v.created_at, now()) AS at FROM v
       WHERE NOT EXISTS (SELECT 1 FROM credit_accounts a WHERE a.customer_id = v.customer_id)
     ),
     claimed AS (
       INSERT INTO usage_requests (request_id, created_at)
       SELECT request_id, at FROM plain ORDER BY ord
       ON CONFLICT (request_id) DO NOTHING
       RETURNING request_id
     ),
     r AS (
       SELECT p.*,
              coalesce(b.period_start, date_trunc('month', p.at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC') AS period_start,
              coalesce(b.period_end, (date_trunc('month', p.at AT TIME ZONE 'UTC') + interval '1 month') AT TIME ZONE 'UTC') AS period_end
       FROM plain p JOIN claimed c USING (request_id)
       LEFT JOIN LATERAL (
         SELECT b.period_start, b.period_end FROM billing_periods b
         WHERE b.customer_id = p.customer_id AND b.period_start <= p.at AND b.period_end > p.at
         ORDER BY b.period_start DESC LIMIT 1
       ) b ON true
     ),
     totals AS (
       INSERT INTO usage_period_totals AS t (customer_id, period_start, period_end, requests, billable_tokens)
       SELECT customer_id, period_start, period_end, count(*), sum(billable_tokens)
       FROM r GROUP BY 1, 2, 3 ORDER BY 1, 2
       ON CONFLICT (customer_id, period_start) DO UPDATE
         SET requests = t.requests + excluded.requests, billable_tokens = t.billable_tokens + excluded.billable_tokens
       RETURNING t.customer_id, t.period_start, t.billable_tokens AS after
     ),
     placed AS (
       SELECT r.*,
              (t.after - sum(r.billable_tokens) OVER (
                PARTITION BY r.customer_id, r.period_start ORDER BY r.ord
                ROWS BETWEEN CURRENT ROW AND UNBOUNDED FOLLOWING))::bigint AS before
       FROM r JOIN totals t ON t.customer_id = r.customer_id AND t.period_start = r.period_start
     ),
     priced AS (
       -- charges.ts: the list price (half up, in micros) of the tokens past the period's allowance;
       -- bigint division, which floors a non-negative quotient.
       SELECT p.*,
              (2 * (greatest(0, p.before + p.billable_tokens - p.included_tokens) - greatest(0, p.before - p.included_tokens))
                 * p.overage_per_1k_micros + 1000) / 2000 AS charge_micros
       FROM placed p
     ),
     inserted AS (
       INSERT INTO usage_events (${COLUMNS})
       SELECT request_id, customer_id, model, prompt_tokens, cached_tokens, cache_write_tokens, completion_tokens,
              reasoning_tokens, billable_tokens, provider_cost_micros, price_micros, source, plan_id, price_model,
              end_user, at, charge_micros
       FROM priced ORDER BY ord
       RETURNING request_id
     ),
     hourly AS (
       INSERT INTO usage_hourly AS h (customer_id, hour, model, requests, ${SUMMED.join(", ")})
       SELECT customer_id, date_trunc('hour', at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC', model,
              count(*), ${SUMMED.map((c) => (c === "credit_tokens" || c === "credit_micros" ? "0" : `sum(${c})`)).join(", ")}
       FROM priced GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
       ON CONFLICT (customer_id, hour, model) DO UPDATE SET
         requests = h.requests + excluded.requests,
         ${SUMMED.map((c) => `${c} = h.${c} + excluded.${c}`).join(",\n         ")}
     ),
     daily AS (
       INSERT INTO usage_daily AS d (customer_id, day, model, requests, billable_tokens, provider_cost_micros, charge_micros)
       SELECT customer_id, date_trunc('day', at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC', model,
              count(*), sum(billable_tokens), sum(provider_cost_micros), sum(charge_micros)
       FROM priced GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
       ON CONFLICT (customer_id, day, model) DO UPDATE SET
         requests = d.requests + excluded.requests,
         billable_tokens = d.billable_tokens + excluded.billable_tokens,
         provider_cost_micros = d.provider_cost_micros + excluded.provider_cost_micros,
         charge_micros = d.charge_micros + excluded.charge_micros
     )
     SELECT v.request_id,
            CASE WHEN p.request_id IS NULL THEN 'credits' WHEN i.request_id IS NULL THEN 'repeat' ELSE 'charged' END AS state,
            pr.charge_micros, pr.before, v.included_tokens, v.billable_tokens
     FROM v
     LEFT JOIN plain p USING (request_id)
     LEFT JOIN (SELECT request_id FROM inserted) i USING (request_id)
     LEFT JOIN priced pr USING (request_id)
     ORDER BY v.ord`,
    {
      requestIds: rows.map((r) => r.requestId),
      customerIds: rows.map((r) => r.customerId),
      models: rows.map((r) => r.model),
      promptTokens: rows.map((r) => r.promptTokens),
      cachedTokens: rows.map((r) => r.cachedTokens),
      cacheWriteTokens: rows.map((r) => r.cacheWriteTokens),
      completionTokens: rows.map((r) => r.completionTokens),
      reasoningTokens: rows.map((r) => r.reasoningTokens),
      billableTokens: rows.map((r) => r.billableTokens),
      providerCosts: rows.map((r) => r.providerCostMicros),
      prices: rows.map((r) => r.priceMicros),
      sources: rows.map((r) => r.source),
      planIds: rows.map((r) => r.planId),
      priceModels: rows.map((r) => r.priceModel ?? null),
      endUsers: rows.map((r) => r.endUser ?? null),
      createdAts: rows.map((r) => r.createdAt?.toISOString() ?? null),
      included: rows.map((r) => r.pricing.includedTokens),
      rates: rows.map((r) => r.pricing.overagePer1kMicros),
    },
  );
  const written: PlainWritten = { charges: new Map(), withCredits: new Set(), repeats: new Set() };
  for (const o of out) {
    if (o.state === "credits") written.withCredits.add(o.request_id);
    else if (o.state === "repeat") written.repeats.add(o.request_id);
    else {
      const included = Number(o.included_tokens);
      const after = Number(o.before) + Number(o.billable_tokens);
      written.charges.set(o.request_id, {
        chargeMicros: Number(o.charge_micros),
        creditTokens: 0,
        creditMicros: 0,
        creditBalanceMicros: null,
        allowanceRemainingTokens: included > 0 ? Math.max(0, included - after) : null,
      });
    }
  }
  return written;
}
