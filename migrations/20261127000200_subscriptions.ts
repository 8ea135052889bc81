import type { Knex } from "knex";

// Stripe subscriptions as last applied from webhooks. `last_event_created` is the per-object
// watermark: an event older than the last one applied to this subscription is not applied.
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable("subscriptions", (t) => {
    t.text("id").primary(); // Stripe subscription id
    t.text("customer_id").nullable().references("customers.id").onDelete("SET NULL");
    t.text("stripe_customer_id").notNullable();
    t.text("status").notNullable();
    t.text("stripe_price_id").nullable();
    t.text("plan_id").nullable().references("plans.id");
    t.timestamp("current_period_start", { useTz: true }).nullable();
    t.timestamp("current_period_end", { useTz: true }).nullable();
    t.bigInteger("last_event_created").notNullable().defaultTo(0);
    t.timestamp("created_at", { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp("updated_at", { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.index(["customer_id"]);
    t.index(["stripe_customer_id"]);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable("subscriptions");
}
