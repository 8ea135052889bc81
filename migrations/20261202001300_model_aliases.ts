import type { Knex } from "knex";

// Which price a usage row was billed at: the price table's model name (a dated snapshot is billed
// as the model it pins) or "default" when the operator's DEFAULT_MODEL_PRICE was applied to a model
// the table does not know. Rows written before this column stay null: their price is not recorded.
export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable("usage_events", (t) => {
    t.text("price_model").nullable();
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable("usage_events", (t) => {
    t.dropColumn("price_model");
  });
}
