import type { Knex } from "knex";

// Outgoing webhooks (src/notifications/): the operator's endpoints, the events published to them and
// one delivery per (event, endpoint), the delivery log. Postgres is the truth about what is owed to
// whom; a delivery's BullMQ job (job id = delivery id) is only its fast path.
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable("webhook_endpoints", (t) => {
    t.text("id").primary();
    t.text("url").notNullable();
    // Needed in clear to sign each attempt; never logged, never in a job payload.
    t.text("secret").notNullable();
    t.boolean("enabled").notNullable().defaultTo(true);
    // Null: every event type.
    t.specificType("event_types", "text[]").nullable();
    t.timestamp("created_at", { useTz: true }).notNullable().defaultTo(knex.fn.now());
  });
  await knex.schema.createTable("webhook_events", (t) => {
    // The publisher's id when it gave one: publishing it again is the same event.
    t.text("id").primary();
    t.text("type").notNullable();
    t.jsonb("data").notNullable();
    t.timestamp("created_at", { useTz: true }).notNullable().defaultTo(knex.fn.now());
  });
  await knex.schema.createTable("webhook_deliveries", (t) => {
    t.text("id").primary();
    t.text("event_id").notNullable().references("id").inTable("webhook_events").onDelete("CASCADE");
    t.text("endpoint_id").notNullable().references("id").inTable("webhook_endpoints").onDelete("CASCADE");
    t.text("status").notNullable().defaultTo("pending");
    t.integer("attempts").notNullable().defaultTo(0);
    t.integer("last_http_status").nullable();
    t.text("last_error").nullable();
    t.timestamp("created_at", { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp("updated_at", { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp("delivered_at", { useTz: true }).nullable();
    t.unique(["event_id", "endpoint_id"]);
    t.index(["status", "updated_at"]);
    t.index(["endpoint_id", "created_at"]);
  });
  await knex.raw(
    "ALTER TABLE webhook_deliveries ADD CONSTRAINT webhook_deliveries_status_check " +
      "CHECK (status IN ('pending', 'delivered', 'failed'))",
  );
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable("webhook_deliveries");
  await knex.schema.dropTable("webhook_events");
  await knex.schema.dropTable("webhook_endpoints");
}
