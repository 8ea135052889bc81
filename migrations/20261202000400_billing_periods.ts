import type { Knex } from "knex";

// Every billing period a subscription event ever showed, not only the current one: the flush cuts
// report windows at the boundaries of the period a usage row belongs to, which for a late row is an
// earlier period. A period is keyed by (subscription, start); a later event may move its end (a
// cancellation, a trial ending). Reports keep the period their window lies in, so the reporter can
// tell a period already invoiced.
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable("billing_periods", (t) => {
    t.text("subscription_id").notNullable();
    t.text("customer_id").notNullable().references("customers.id").onDelete("CASCADE");
    t.timestamp("period_start", { useTz: true }).notNullable();
    t.timestamp("period_end", { useTz: true }).notNullable();
    // `created` of the Stripe event that last set period_end: a late older event does not move it.
    t.bigInteger("last_event_created").notNullable().defaultTo(0);
    t.timestamp("created_at", { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp("updated_at", { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.primary(["subscription_id", "period_start"]);
    t.index(["customer_id", "period_start"]);
    t.index(["customer_id", "period_end"]);
  });
  await knex.raw(
    "ALTER TABLE billing_periods ADD CONSTRAINT billing_periods_order_check CHECK (period_end > period_start)",
  );
  await knex.raw(
    `INSERT INTO billing_periods (subscription_id, customer_id, period_start, period_end, last_event_created)
     SELECT id, customer_id, current_period_start, current_period_end, last_event_created FROM subscriptions
     WHERE customer_id IS NOT NULL AND current_period_start IS NOT NULL
       AND current_period_end > current_period_start`,
  );
  await knex.schema.alterTable("usage_reports", (t) => {
    // Null when no subscription period covers the window (the calendar month applies).
    t.timestamp("period_start", { useTz: true }).nullable();
    t.timestamp("period_end", { useTz: true }).nullable();
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable("usage_reports", (t) => {
    t.dropColumn("period_start");
    t.dropColumn("period_end");
  });
  await knex.schema.dropTable("billing_periods");
}
