import type { Knex } from "knex";

export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable("plans", (t) => {
    t.text("id").primary();
    t.text("name").notNullable();
    t.text("kind").notNullable().checkIn(["usage", "tiered", "hybrid"], "plans_kind_check");
    t.bigInteger("base_fee_micros").notNullable().defaultTo(0);
    t.bigInteger("included_tokens").notNullable().defaultTo(0);
    t.bigInteger("overage_per_1k_micros").notNullable().defaultTo(0);
    t.bigInteger("hard_limit_tokens").nullable();
    t.jsonb("stripe_price_ids").notNullable().defaultTo("{}");
    t.timestamp("created_at", { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp("updated_at", { useTz: true }).notNullable().defaultTo(knex.fn.now());
  });
  await knex.raw(
    "ALTER TABLE plans ADD CONSTRAINT plans_money_check CHECK (base_fee_micros >= 0 AND included_tokens >= 0 AND overage_per_1k_micros >= 0 AND (hard_limit_tokens IS NULL OR hard_limit_tokens >= 0))",
  );

  await knex.schema.createTable("customers", (t) => {
    t.text("id").primary();
    t.text("name").notNullable();
    t.text("email").nullable();
    t.text("plan_id").notNullable().references("plans.id");
    t.text("stripe_customer_id").nullable().unique();
    t.text("status")
      .notNullable()
      .defaultTo("active")
      .checkIn(["active", "past_due", "suspended", "canceled"], "customers_status_check");
    t.timestamp("created_at", { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp("updated_at", { useTz: true }).notNullable().defaultTo(knex.fn.now());
  });

  await knex.schema.createTable("api_keys", (t) => {
    t.bigIncrements("id").primary();
    t.text("customer_id").notNullable().references("customers.id").onDelete("CASCADE");
    t.text("prefix").notNullable();
    t.text("key_hash").notNullable().unique();
    t.timestamp("created_at", { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp("last_used_at", { useTz: true }).nullable();
    t.timestamp("revoked_at", { useTz: true }).nullable();
    t.index(["customer_id"]);
  });

  // The ledger: one row per billed request, forever. request_id is the idempotency key of the
  // whole chain (API → job → row), so a retried or re-delivered job can never bill twice.
  await knex.schema.createTable("usage_events", (t) => {
    t.bigIncrements("id").primary();
    t.text("request_id").notNullable().unique();
    t.text("customer_id").notNullable().references("customers.id");
    t.text("model").notNullable();
    t.bigInteger("prompt_tokens").notNullable();
    t.bigInteger("cached_tokens").notNullable().defaultTo(0);
    t.bigInteger("completion_tokens").notNullable();
    t.bigInteger("reasoning_tokens").notNullable().defaultTo(0);
    t.bigInteger("billable_tokens").notNullable();
    t.bigInteger("provider_cost_micros").notNullable();
    t.bigInteger("price_micros").notNullable();
    t.text("source").notNullable().checkIn(["provider", "estimated"], "usage_events_source_check");
    t.text("plan_id").notNullable().references("plans.id");
    t.timestamp("created_at", { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.index(["customer_id", "created_at"]);
  });
  // cached ⊂ prompt and reasoning ⊂ completion: a row that counts a subset twice is refused.
  await knex.raw(
    `ALTER TABLE usage_events ADD CONSTRAINT usage_events_tokens_check CHECK (
       prompt_tokens >= 0 AND completion_tokens >= 0
       AND cached_tokens BETWEEN 0 AND prompt_tokens
       AND reasoning_tokens BETWEEN 0 AND completion_tokens
       AND billable_tokens >= 0 AND provider_cost_micros >= 0 AND price_micros >= 0)`,
  );
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable("usage_events");
  await knex.schema.dropTable("api_keys");
  await knex.schema.dropTable("customers");
  await knex.schema.dropTable("plans");
}
