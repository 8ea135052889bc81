import type { Knex } from "knex";

// The token and credit columns GET /v1/usage, the quota rebuild and the profitability report sum
// (src/billing/ledger/usage-totals.ts), so they read the hourly rollup and never a customer's raw
// rows. Filled for the hours written before this migration from the ledger, in the same
// transaction; `addToHourlyUsage` keeps them from then on.
const COLUMNS = [
  "prompt_tokens",
  "cached_tokens",
  "cache_write_tokens",
  "completion_tokens",
  "reasoning_tokens",
  "credit_tokens",
  "credit_micros",
] as const;

export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable("usage_hourly", (t) => {
    for (const c of COLUMNS) t.bigInteger(c).notNullable().defaultTo(0);
  });
  await knex.raw(`
    UPDATE usage_hourly h SET ${COLUMNS.map((c) => `${c} = u.${c}`).join(", ")}
    FROM (SELECT customer_id, date_trunc('hour', created_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS hour, model,
                 ${COLUMNS.map((c) => `sum(${c}) AS ${c}`).join(", ")}
          FROM usage_events GROUP BY 1, 2, 3) u
    WHERE h.customer_id = u.customer_id AND h.hour = u.hour AND h.model = u.model`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable("usage_hourly", (t) => {
    for (const c of COLUMNS) t.dropColumn(c);
  });
}
