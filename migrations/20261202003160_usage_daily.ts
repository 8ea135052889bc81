import type { Knex } from "knex";

// Usage per customer, model and UTC day (src/billing/ledger/hourly-usage.ts): what the day plots
// and the per-period totals read, 24 times fewer rows than usage_hourly. Kept in the rows' own
// transaction by `chargeRows` (src/billing/ledger/charges.ts), right after usage_hourly.
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable("usage_daily", (t) => {
    t.text("customer_id").notNullable().references("customers.id");
    t.timestamp("day", { useTz: true }).notNullable(); // UTC midnight
    t.text("model").notNullable();
    t.bigInteger("requests").notNullable().defaultTo(0);
    t.bigInteger("billable_tokens").notNullable().defaultTo(0);
    t.bigInteger("provider_cost_micros").notNullable().defaultTo(0);
    t.bigInteger("charge_micros").notNullable().defaultTo(0);
    t.primary(["customer_id", "day", "model"]);
  });
  // Plots and totals over every customer read a range of days.
  await knex.raw("CREATE INDEX usage_daily_day_idx ON usage_daily (day)");
  // Usage written before this migration, from the hourly rollup (which holds all of it).
  await knex.raw(`
    INSERT INTO usage_daily (customer_id, day, model, requests, billable_tokens, provider_cost_micros, charge_micros)
    SELECT customer_id, date_trunc('day', hour AT TIME ZONE 'UTC') AT TIME ZONE 'UTC', model,
           sum(requests), sum(billable_tokens), sum(provider_cost_micros), sum(charge_micros)
    FROM usage_hourly GROUP BY 1, 2, 3`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable("usage_daily");
}
