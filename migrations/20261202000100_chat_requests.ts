import type { Knex } from "knex";

// The durable half of a chat's idempotency: the claim of an Idempotency-Key (customer, key, body
// hash) and the outcome of keyed and async chats, kept for at least their promised time whatever
// Redis has lost. A succeeded row commits in the same transaction as its usage row.
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable("chat_requests", (t) => {
    t.text("request_id").primary();
    t.text("customer_id").notNullable();
    // sha256 of (customer, Idempotency-Key); null for an async chat sent without a key.
    t.text("key_hash").nullable();
    t.text("body_hash").nullable();
    t.text("status")
      .notNullable()
      .defaultTo("pending")
      .checkIn(["pending", "succeeded", "failed"], "chat_requests_status_check");
    // json, not jsonb: a replay answers with the bytes the first answer had, keys in their order.
    t.json("response").nullable();
    t.jsonb("error").nullable();
    // A failure a repeat of the key may run again (retries ran out on transient provider errors).
    t.boolean("retryable").notNullable().defaultTo(false);
    t.timestamp("created_at", { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp("updated_at", { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp("expires_at", { useTz: true }).notNullable();
    t.unique(["customer_id", "key_hash"]);
    t.index(["expires_at"]);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable("chat_requests");
}
