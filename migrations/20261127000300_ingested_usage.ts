import type { Knex } from "knex";

// Usage events posted to POST /v1/usage were counted by the customer, not by our provider or
// tokenizer: the ledger says so, for audits and disputes.
export async function up(knex: Knex): Promise<void> {
  await knex.raw("ALTER TABLE usage_events DROP CONSTRAINT usage_events_source_check");
  await knex.raw(
    "ALTER TABLE usage_events ADD CONSTRAINT usage_events_source_check CHECK (source IN ('provider', 'estimated', 'ingested'))",
  );
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw("DELETE FROM usage_events WHERE source = 'ingested'");
  await knex.raw("ALTER TABLE usage_events DROP CONSTRAINT usage_events_source_check");
  await knex.raw(
    "ALTER TABLE usage_events ADD CONSTRAINT usage_events_source_check CHECK (source IN ('provider', 'estimated'))",
  );
}
