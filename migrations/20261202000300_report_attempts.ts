import type { Knex } from "knex";

// When a report was first sent towards Stripe. Stripe dedupes a meter event identifier for about
// 24 hours from the event's arrival, which is never before this moment: a resend later than that
// may count twice unless Stripe's figures are checked first (src/billing/reporting/report-resend.ts).
export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable("usage_reports", (t) => {
    t.timestamp("first_attempted_at", { useTz: true }).nullable();
  });
  // Reports not yet sent may have been attempted at any time since they were made: assume the
  // earliest, so a resend is checked rather than trusted.
  await knex("usage_reports")
    .whereNot({ status: "sent" })
    .update({ first_attempted_at: knex.ref("created_at") });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable("usage_reports", (t) => {
    t.dropColumn("first_attempted_at");
  });
}
