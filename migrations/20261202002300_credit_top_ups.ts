import type { Knex } from "knex";

// Top-ups through Stripe (src/billing/credits/checkout.ts, top-ups.ts). Checkout top-ups need no
// table: their grant's reference is the Checkout Session id. Automatic top-ups have per-customer
// settings and one row per attempt, so "one at a time" and "at most N a month" are rows to count
// under the customer's credit account lock; the partial unique index keeps one pending per
// customer even if a writer forgot the lock.
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable("credit_auto_top_up_settings", (t) => {
    t.text("customer_id").primary().references("customers.id");
    t.boolean("enabled").notNullable();
    t.bigInteger("threshold_micros").notNullable();
    t.bigInteger("amount_micros").notNullable();
    t.integer("max_per_month").notNullable();
    t.timestamp("updated_at", { useTz: true }).notNullable().defaultTo(knex.fn.now());
  });
  // Whole cents: Stripe charges cents.
  await knex.raw(`ALTER TABLE credit_auto_top_up_settings
    ADD CONSTRAINT credit_auto_top_up_settings_check CHECK (
      threshold_micros >= 0 AND amount_micros > 0 AND amount_micros % 10000 = 0 AND max_per_month >= 1)`);

  await knex.schema.createTable("credit_top_ups", (t) => {
    t.text("id").primary();
    t.text("customer_id").notNullable().references("customers.id");
    t.text("status")
      .notNullable()
      .defaultTo("pending")
      .checkIn(["pending", "succeeded", "failed"], "credit_top_ups_status_check");
    // The UTC calendar month ("2026-12") the attempt counts against.
    t.text("month").notNullable();
    t.bigInteger("amount_micros").notNullable();
    t.text("payment_intent_id").nullable().unique({ indexName: "credit_top_ups_payment_intent_unique" });
    // While set and in the future, one caller is creating the PaymentIntent; a crashed caller's
    // lease runs out and the next afterUsage creates it (the same one: idempotency key = id).
    t.timestamp("charge_lease_until", { useTz: true }).nullable();
    t.text("failure").nullable();
    t.timestamp("created_at", { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp("updated_at", { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.index(["customer_id", "month"]);
  });
  await knex.raw(`CREATE UNIQUE INDEX credit_top_ups_one_pending ON credit_top_ups (customer_id)
    WHERE status = 'pending'`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable("credit_top_ups");
  await knex.schema.dropTable("credit_auto_top_up_settings");
}
