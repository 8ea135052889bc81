import type { Knex } from "knex";

// One row per job that failed for good, kept after BullMQ trims its failed set. A job that fails
// again after a redrive updates its row; a redrive that succeeds marks it resolved.
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable("dead_letters", (t) => {
    t.bigIncrements("id").primary();
    t.text("queue").notNullable();
    t.text("job_id").notNullable();
    t.text("name").notNullable();
    t.jsonb("data").notNullable();
    t.text("reason").notNullable();
    t.integer("attempts").notNullable();
    t.timestamp("failed_at", { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.integer("redrive_count").notNullable().defaultTo(0);
    t.timestamp("redriven_at", { useTz: true }).nullable();
    t.timestamp("resolved_at", { useTz: true }).nullable();
    t.unique(["queue", "job_id"]);
    t.index(["resolved_at", "queue"]);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable("dead_letters");
}
