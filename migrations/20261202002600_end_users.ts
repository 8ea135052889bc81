import type { Knex } from "knex";

// End users (README "End users"): the customer's own user a usage row was made for, and the limits a
// customer sets on them. The length bound is the API's (src/billing/end-users/limits.ts,
// END_USER_MAX_CHARS); an empty end user is no end user, stored as NULL.
export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable("usage_events", (t) => {
    t.text("end_user").nullable();
  });
  await knex.raw(`ALTER TABLE usage_events
    ADD CONSTRAINT usage_events_end_user_check CHECK (char_length(end_user) BETWEEN 1 AND 512)`);
  // Per-customer, per-end-user period sums (the limit counter's rebuild, GET /v1/usage?group_by=end_user)
  // read the index alone.
  await knex.raw(`CREATE INDEX usage_events_end_user_period
    ON usage_events (customer_id, end_user, created_at) INCLUDE (billable_tokens)
    WHERE end_user IS NOT NULL`);

  await knex.schema.createTable("end_user_limits", (t) => {
    t.bigIncrements("id").primary();
    t.text("customer_id").notNullable().references("customers.id").onDelete("CASCADE");
    // NULL: the default for every end user of the customer without a row of its own.
    t.text("end_user").nullable();
    t.bigInteger("limit_tokens").nullable();
    // Spend at the plan's rate (listPriceMicros), converted to tokens when enforced.
    t.bigInteger("limit_micros").nullable();
    t.timestamp("updated_at", { useTz: true }).notNullable().defaultTo(knex.fn.now());
  });
  await knex.raw(`ALTER TABLE end_user_limits
    ADD CONSTRAINT end_user_limits_end_user_check CHECK (char_length(end_user) BETWEEN 1 AND 512),
    ADD CONSTRAINT end_user_limits_some_check CHECK (limit_tokens IS NOT NULL OR limit_micros IS NOT NULL),
    ADD CONSTRAINT end_user_limits_tokens_check CHECK (limit_tokens > 0),
    ADD CONSTRAINT end_user_limits_micros_check CHECK (limit_micros > 0)`);
  // One default and one override per end user: the upsert's conflict target.
  await knex.raw(`CREATE UNIQUE INDEX end_user_limits_unique
    ON end_user_limits (customer_id, (coalesce(end_user, '')))`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable("end_user_limits");
  await knex.raw("DROP INDEX usage_events_end_user_period");
  await knex.schema.alterTable("usage_events", (t) => {
    t.dropColumn("end_user");
  });
}
