import type { Knex } from "knex";

// Usage per customer, model and UTC hour (src/billing/ledger/hourly-usage.ts): what the dashboard
// plots and the profitability report sums, so neither scans the ledger. Kept in the rows' own
// transaction by `chargeRows` (src/billing/ledger/charges.ts), after the rows are priced.
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable("usage_hourly", (t) => {
    t.text("customer_id").notNullable().references("customers.id");
    t.timestamp("hour", { useTz: true }).notNullable();
    t.text("model").notNullable();
    t.bigInteger("requests").notNullable().defaultTo(0);
    t.bigInteger("billable_tokens").notNullable().defaultTo(0);
    t.bigInteger("provider_cost_micros").notNullable().defaultTo(0);
    t.bigInteger("charge_micros").notNullable().defaultTo(0);
    t.primary(["customer_id", "hour", "model"]);
  });
  // Plots over every customer read a range of hours.
  await knex.raw("CREATE INDEX usage_hourly_hour_idx ON usage_hourly (hour)");
  // Rows written before this migration.
  await knex.raw(`
    INSERT INTO usage_hourly (customer_id, hour, model, requests, billable_tokens, provider_cost_micros, charge_micros)
    SELECT customer_id, date_trunc('hour', created_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC', model,
           count(*), sum(billable_tokens), sum(provider_cost_micros), sum(charge_micros)
    FROM usage_events GROUP BY 1, 2, 3`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable("usage_hourly");
}
