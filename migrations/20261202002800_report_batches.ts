import type { Knex } from "knex";

// The batch a report was sent in through Stripe's v2 meter event stream: the id of the batch's
// first report, which names its `stripe-report` job (src/billing/reporting/report-batches.ts). The
// sweeper reads it to tell a report whose batch job is alive from one whose job is lost.
export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable("usage_reports", (t) => {
    t.bigInteger("batch_id").nullable();
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable("usage_reports", (t) => {
    t.dropColumn("batch_id");
  });
}
