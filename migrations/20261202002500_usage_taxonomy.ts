import type { Knex } from "knex";

// One usage taxonomy for every provider (README "Usage taxonomy"): prompt_tokens are all input, of
// which cached_tokens are cache reads and cache_write_tokens cache writes (disjoint, so together at
// most the prompt); completion_tokens are all output, of which reasoning_tokens. The new check
// replaces usage_events_tokens_check with the same bounds plus cache writes (at most 2^53 - 1, as
// usage_events_exact_check bounds the other counts). NOT VALID, as
// 20261202001200_usage_bounds: it binds every new or updated row without scanning the ledger; rows
// written before it have no cache writes (the default 0), so the old check already held for them.
const TAXONOMY_CHECK = `CHECK (
  prompt_tokens >= 0 AND completion_tokens >= 0
  AND cached_tokens >= 0 AND cache_write_tokens BETWEEN 0 AND 9007199254740991
  AND cached_tokens + cache_write_tokens <= prompt_tokens
  AND reasoning_tokens BETWEEN 0 AND completion_tokens
  AND billable_tokens >= 0 AND provider_cost_micros >= 0 AND price_micros >= 0)`;

export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable("usage_events", (t) => {
    t.bigInteger("cache_write_tokens").notNullable().defaultTo(0);
  });
  await knex.raw(`ALTER TABLE usage_events DROP CONSTRAINT usage_events_tokens_check,
    ADD CONSTRAINT usage_events_taxonomy_check ${TAXONOMY_CHECK} NOT VALID`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw("ALTER TABLE usage_events DROP CONSTRAINT usage_events_taxonomy_check");
  await knex.schema.alterTable("usage_events", (t) => {
    t.dropColumn("cache_write_tokens");
  });
  await knex.raw(
    `ALTER TABLE usage_events ADD CONSTRAINT usage_events_tokens_check CHECK (
       prompt_tokens >= 0 AND completion_tokens >= 0
       AND cached_tokens BETWEEN 0 AND prompt_tokens
       AND reasoning_tokens BETWEEN 0 AND completion_tokens
       AND billable_tokens >= 0 AND provider_cost_micros >= 0 AND price_micros >= 0) NOT VALID`,
  );
}
