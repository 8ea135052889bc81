import type { Knex } from "knex";

// 2^53 - 1: src/platform/db.ts reads every int8 as a JS number, exact only up to here.
const MAX_EXACT = "9007199254740991";
const LEDGER_COLUMNS = [
  "prompt_tokens",
  "cached_tokens",
  "completion_tokens",
  "reasoning_tokens",
  "billable_tokens",
  "provider_cost_micros",
  "price_micros",
];

// The ledger and the reports hold only numbers a JS number holds exactly. NOT VALID: the check
// binds every new or updated row at once without scanning (and locking) the whole ledger; rows
// written before it are caught by the flush, whose sums are numeric and checked per customer.
//
// A report the flush could not send (its window's sum is above the largest reportable value, or
// writing it failed) is kept `failed` with its rows and a quarantine reason: the reporter never
// sends it, even when retried, until an operator fixes its rows and releases them.
export async function up(knex: Knex): Promise<void> {
  await knex.raw(
    `ALTER TABLE usage_events ADD CONSTRAINT usage_events_exact_check CHECK (
       ${LEDGER_COLUMNS.map((c) => `${c} <= ${MAX_EXACT}`).join(" AND ")}) NOT VALID`,
  );
  await knex.schema.alterTable("usage_reports", (t) => {
    t.text("quarantine_reason").nullable();
  });
  await knex.raw(
    `ALTER TABLE usage_reports ADD CONSTRAINT usage_reports_exact_check CHECK (value <= ${MAX_EXACT}) NOT VALID`,
  );
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw("ALTER TABLE usage_reports DROP CONSTRAINT usage_reports_exact_check");
  await knex.schema.alterTable("usage_reports", (t) => {
    t.dropColumn("quarantine_reason");
  });
  await knex.raw("ALTER TABLE usage_events DROP CONSTRAINT usage_events_exact_check");
}
