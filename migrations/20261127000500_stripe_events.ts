import type { Knex } from "knex";

// Every Stripe webhook event as received, keyed by Stripe's event id: a re-delivery hits the
// primary key and is ignored. `status` follows the event: received → processed | ignored | dead.
// On customers, `status_event_created` is the watermark of the billing events (invoice.*,
// customer.deleted) applied to the status, and `past_due_since` starts the grace period.
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable("stripe_events", (t) => {
    t.text("id").primary();
    t.text("type").notNullable();
    t.bigInteger("created").notNullable();
    t.jsonb("payload").notNullable();
    t.text("status")
      .notNullable()
      .defaultTo("received")
      .checkIn(["received", "processed", "ignored", "dead"], "stripe_events_status_check");
    t.integer("attempts").notNullable().defaultTo(0);
    t.text("error").nullable();
    t.timestamp("received_at", { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp("processed_at", { useTz: true }).nullable();
  });
  // The sweeper looks only at events still waiting; keep that index small.
  await knex.raw(
    "CREATE INDEX stripe_events_received_idx ON stripe_events (received_at) WHERE status = 'received'",
  );
  await knex.schema.alterTable("customers", (t) => {
    t.bigInteger("status_event_created").notNullable().defaultTo(0);
    t.timestamp("past_due_since", { useTz: true }).nullable();
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable("customers", (t) => {
    t.dropColumn("past_due_since");
    t.dropColumn("status_event_created");
  });
  await knex.schema.dropTable("stripe_events");
}
