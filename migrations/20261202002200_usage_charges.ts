import type { Knex } from "knex";

// What each usage row adds to its customer's bill, and what credits paid of it
// (src/billing/ledger/charges.ts): `charge_micros` prices the row's tokens past the plan's allowance
// at the plan's rate; `credit_tokens` of them were paid by credits (`credit_micros`), and those are
// never reported to Stripe — the rest are. `usage_period_totals` keeps each customer's running
// total per billing period, updated in the rows' own transaction: its row lock orders a customer's
// concurrent writers, and its total tells which tokens of a new row are past the allowance without
// summing the ledger.
export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable("usage_events", (t) => {
    t.bigInteger("charge_micros").notNullable().defaultTo(0);
    t.bigInteger("credit_tokens").notNullable().defaultTo(0);
    t.bigInteger("credit_micros").notNullable().defaultTo(0);
  });
  await knex.raw(`ALTER TABLE usage_events ADD CONSTRAINT usage_events_credit_check CHECK (
    credit_tokens >= 0 AND credit_tokens <= billable_tokens AND credit_micros >= 0 AND credit_micros <= charge_micros)`);
  await knex.schema.createTable("usage_period_totals", (t) => {
    t.text("customer_id").notNullable().references("customers.id");
    t.timestamp("period_start", { useTz: true }).notNullable();
    t.timestamp("period_end", { useTz: true }).notNullable();
    t.bigInteger("requests").notNullable().defaultTo(0);
    t.bigInteger("billable_tokens").notNullable().defaultTo(0);
    t.primary(["customer_id", "period_start"]);
  });
  // Rows written before this migration: their totals, per subscription period or calendar month.
  await knex.raw(`
    INSERT INTO usage_period_totals (customer_id, period_start, period_end, requests, billable_tokens)
    SELECT u.customer_id,
           coalesce(p.period_start, date_trunc('month', u.created_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'),
           coalesce(p.period_end, (date_trunc('month', u.created_at AT TIME ZONE 'UTC') + interval '1 month') AT TIME ZONE 'UTC'),
           count(*), sum(u.billable_tokens)
    FROM usage_events u
    LEFT JOIN LATERAL (
      SELECT b.period_start, b.period_end FROM billing_periods b
      WHERE b.customer_id = u.customer_id AND b.period_start <= u.created_at AND b.period_end > u.created_at
      ORDER BY b.period_start DESC LIMIT 1
    ) p ON true
    GROUP BY 1, 2, 3
    ON CONFLICT (customer_id, period_start) DO UPDATE
      SET requests = usage_period_totals.requests + excluded.requests,
          billable_tokens = usage_period_totals.billable_tokens + excluded.billable_tokens`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable("usage_period_totals");
  await knex.raw("ALTER TABLE usage_events DROP CONSTRAINT usage_events_credit_check");
  await knex.schema.alterTable("usage_events", (t) => {
    t.dropColumn("charge_micros");
    t.dropColumn("credit_tokens");
    t.dropColumn("credit_micros");
  });
}
