import type { Knex } from "knex";

// The outbox between the ledger and Stripe. Every usage row points at exactly one report once it is
// claimed (report_id is set once, under a row lock, in the same transaction that inserts the
// report); a report carries the identifier Stripe dedupes on. Reconciliations record drift per day.
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable("usage_reports", (t) => {
    t.bigIncrements("id").primary();
    t.text("customer_id").notNullable().references("customers.id");
    t.text("event_name").notNullable();
    t.bigInteger("value").notNullable();
    t.timestamp("window_start", { useTz: true }).notNullable();
    t.timestamp("window_end", { useTz: true }).notNullable();
    // The meter event's `timestamp`: the latest usage row of the report, inside its window.
    t.timestamp("event_at", { useTz: true }).notNullable();
    t.text("identifier").notNullable().unique();
    t.text("status")
      .notNullable()
      .defaultTo("pending")
      .checkIn(["pending", "sent", "failed"], "usage_reports_status_check");
    t.integer("attempts").notNullable().defaultTo(0);
    t.text("last_error").nullable();
    // The Stripe customer the event was sent for (the customer's mapping may change later).
    t.text("stripe_customer_id").nullable();
    t.timestamp("sent_at", { useTz: true }).nullable();
    t.timestamp("created_at", { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp("updated_at", { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.index(["status", "id"]);
    t.index(["customer_id", "window_start"]);
  });
  await knex.raw(
    "ALTER TABLE usage_reports ADD CONSTRAINT usage_reports_window_check CHECK (value >= 0 AND window_end > window_start AND event_at >= window_start AND event_at < window_end)",
  );

  await knex.schema.alterTable("usage_events", (t) => {
    t.bigInteger("report_id").nullable().references("usage_reports.id");
    t.index(["report_id"]);
  });
  // The flush claims unreported rows per customer; this partial index keeps that cheap forever.
  await knex.raw(
    "CREATE INDEX usage_events_unreported_idx ON usage_events (customer_id, id) WHERE report_id IS NULL",
  );

  await knex.schema.createTable("usage_reconciliations", (t) => {
    t.bigIncrements("id").primary();
    t.date("day").notNullable();
    t.text("customer_id").notNullable().references("customers.id");
    t.text("stripe_customer_id").notNullable();
    t.text("event_name").notNullable();
    t.bigInteger("sent_value").notNullable();
    t.bigInteger("stripe_value").notNullable();
    t.bigInteger("drift").notNullable(); // stripe_value - sent_value
    t.timestamp("checked_at", { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.unique(["day", "customer_id", "stripe_customer_id", "event_name"]);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable("usage_reconciliations");
  await knex.raw("DROP INDEX IF EXISTS usage_events_unreported_idx");
  await knex.schema.alterTable("usage_events", (t) => {
    t.dropColumn("report_id");
  });
  await knex.schema.dropTable("usage_reports");
}
