import type { Knex } from "knex";

// Spend alerts (src/billing/alerts/): the operator's rules, per plan or per customer, and one firing
// per (rule, customer, period). The firing's UNIQUE key is the "fires once per period" rule; its
// event (webhook_events) is written in the same transaction, so neither exists without the other.
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable("alert_rules", (t) => {
    t.text("id").primary();
    t.text("plan_id").nullable().references("plans.id").onDelete("CASCADE");
    t.text("customer_id").nullable().references("customers.id").onDelete("CASCADE");
    t.text("kind")
      .notNullable()
      .checkIn(
        ["allowance_share", "hard_limit_share", "balance_below", "spend_above"],
        "alert_rules_kind_check",
      );
    // A percent for the share kinds, micro-dollars for balance_below and spend_above.
    t.bigInteger("threshold").notNullable();
    t.timestamp("created_at", { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.index(["plan_id"]);
    t.index(["customer_id"]);
  });
  await knex.raw(`ALTER TABLE alert_rules
    ADD CONSTRAINT alert_rules_owner_check CHECK ((plan_id IS NULL) <> (customer_id IS NULL)),
    ADD CONSTRAINT alert_rules_threshold_check CHECK (threshold >= 0)`);
  // The same rule twice would fire twice: one rule per owner, kind and threshold.
  await knex.raw(`CREATE UNIQUE INDEX alert_rules_unique
    ON alert_rules ((coalesce(plan_id, '')), (coalesce(customer_id, '')), kind, threshold)`);

  await knex.schema.createTable("alert_firings", (t) => {
    t.text("id").primary();
    t.text("rule_id").notNullable().references("alert_rules.id").onDelete("CASCADE");
    t.text("customer_id").notNullable().references("customers.id").onDelete("CASCADE");
    t.timestamp("period_start", { useTz: true }).notNullable();
    t.timestamp("period_end", { useTz: true }).notNullable();
    t.text("kind").notNullable();
    t.bigInteger("threshold").notNullable();
    // The measured value when it fired and when it recovered (percent or micro-dollars, as threshold).
    t.bigInteger("value").notNullable();
    t.timestamp("fired_at", { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.bigInteger("recovered_value").nullable();
    t.timestamp("recovered_at", { useTz: true }).nullable();
    // The event written with the last change whose deliveries may not be enqueued yet (a crash
    // between commit and enqueue): the next evaluation enqueues them and clears it.
    t.text("unsent_event_id").nullable();
    t.unique(["rule_id", "customer_id", "period_start"], { indexName: "alert_firings_once" });
    t.index(["customer_id", "period_start"]);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable("alert_firings");
  await knex.schema.dropTable("alert_rules");
}
