import type { Db } from "../../platform/db.js";
import type { Period } from "./periods.js";

/** The ledger columns `usage_hourly` sums per (customer, hour, model), under the same names. */
export const SUMMED = [
  "prompt_tokens",
  "cached_tokens",
  "cache_write_tokens",
  "completion_tokens",
  "reasoning_tokens",
  "billable_tokens",
  "credit_tokens",
  "provider_cost_micros",
  "charge_micros",
  "credit_micros",
] as const;

/**
 * The `usage_hourly` upsert of the rows `from` (a table or CTE with a WHERE, having the ledger's
 * columns) placed at the instant `at`, in (customer, hour, model) order: concurrent writers lock
 * rollup rows in one order. The ledger's writers (plain-rows.ts, paid-rows.ts) run it in the
 * statement that writes the rows, so the rollup never disagrees with the ledger.
 */
export function addToHourlySql(from: string, at: string): string {
  return `INSERT INTO usage_hourly AS h (customer_id, hour, model, requests, ${SUMMED.join(", ")})
     SELECT customer_id, date_trunc('hour', ${at} AT TIME ZONE 'UTC') AT TIME ZONE 'UTC', model,
            count(*), ${SUMMED.map((c) => `sum(${c})`).join(", ")}
     FROM ${from}
     GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
     ON CONFLICT (customer_id, hour, model) DO UPDATE SET
       requests = h.requests + excluded.requests,
       ${SUMMED.map((c) => `${c} = h.${c} + excluded.${c}`).join(",\n       ")}`;
}

/** The `usage_daily` upsert of the rows `from` placed at `at`, as addToHourlySql; (customer, day, model) order. */
export function addToDailySql(from: string, at: string): string {
  return `INSERT INTO usage_daily AS d (customer_id, day, model, requests, billable_tokens, provider_cost_micros, charge_micros)
     SELECT customer_id, date_trunc('day', ${at} AT TIME ZONE 'UTC') AT TIME ZONE 'UTC', model,
            count(*), sum(billable_tokens), sum(provider_cost_micros), sum(charge_micros)
     FROM ${from}
     GROUP BY 1, 2, 3 ORDER BY 1, 2, 3
     ON CONFLICT (customer_id, day, model) DO UPDATE SET
       requests = d.requests + excluded.requests,
       billable_tokens = d.billable_tokens + excluded.billable_tokens,
       provider_cost_micros = d.provider_cost_micros + excluded.provider_cost_micros,
       charge_micros = d.charge_micros + excluded.charge_micros`;
}

export type Bucket = "hour" | "day";

const DAY_MS = 86_400_000;
/** Whether a range starts and ends on UTC midnights, so whole days of `usage_daily` cover it. */
export const isWholeDays = (range: Pick<Period, "start" | "end">) =>
  range.start.getTime() % DAY_MS === 0 && range.end.getTime() % DAY_MS === 0;

/** One bucket of one model's usage. */
export interface UsagePoint {
  at: Date;
  model: string;
  requests: number;
  billableTokens: number;
  providerCostMicros: number;
  chargeMicros: number;
}

/**
 * Usage per UTC hour or day and model in `range` (hours from `range.start`, inclusive, to
 * `range.end`), of one customer or of all, oldest first — read from the daily or hourly rollup,
 * never the ledger, so it stays fast on any ledger size.
 */
export async function usageOverTime(
  db: Db,
  range: Pick<Period, "start" | "end">,
  opts: { bucket: Bucket; customerId?: string },
): Promise<UsagePoint[]> {
  // Days of whole-day ranges come from the daily rollup (24× fewer rows); a range cut mid-day (a
  // subscription period) sums the hours it covers.
  const daily = opts.bucket === "day" && isWholeDays(range);
  const [table, column] = daily ? ["usage_daily", "day"] : ["usage_hourly", "hour"];
  const at =
    opts.bucket === "hour" || daily
      ? column
      : "date_trunc('day', hour AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'";
  const query = db(table)
    .where(column, ">=", range.start)
    .where(column, "<", range.end)
    .select(db.raw(`${at} AS at`), "model")
    .sum({
      requests: "requests",
      tokens: "billable_tokens",
      cost: "provider_cost_micros",
      charge: "charge_micros",
    })
    .groupByRaw("1, 2")
    .orderByRaw("1, 2");
  if (opts.customerId !== undefined) query.where({ customer_id: opts.customerId });
  const rows: Array<Record<string, unknown>> = await query;
  return rows.map((r) => ({
    at: new Date(r.at as string | Date),
    model: String(r.model),
    requests: Number(r.requests),
    billableTokens: Number(r.tokens),
    providerCostMicros: Number(r.cost),
    chargeMicros: Number(r.charge),
  }));
}
