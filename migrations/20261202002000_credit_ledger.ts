import type { Knex } from "knex";

// Prepaid credits (src/billing/credits/). The ledger (`credit_entries`) is append-only: a trigger
// refuses UPDATE and DELETE, so a balance is always the sum of what was written. `credit_grants`
// carries each grant's remaining amount, kept in the same transaction as the entries that change it,
// so drawing needs no scan of the ledger; the CHECKs keep it between 0 and the amount granted.
// `credit_accounts` is one row per customer that every writer locks first (src/billing/credits/
// account.ts): writers for one customer run one after the other, so none can overdraw.
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable("credit_accounts", (t) => {
    t.text("customer_id").primary().references("customers.id");
    t.timestamp("created_at", { useTz: true }).notNullable().defaultTo(knex.fn.now());
  });
  await knex.schema.createTable("credit_grants", (t) => {
    t.bigIncrements("id").primary();
    t.text("customer_id").notNullable().references("credit_accounts.customer_id");
    t.text("source")
      .notNullable()
      .checkIn(["purchased", "promotional", "manual", "auto_top_up"], "credit_grants_source_check");
    t.bigInteger("amount_micros").notNullable();
    t.bigInteger("remaining_micros").notNullable();
    t.timestamp("expires_at", { useTz: true }).nullable();
    // A Stripe Checkout Session or PaymentIntent id…: a grant is applied once however often it arrives.
    t.text("reference").nullable().unique({ indexName: "credit_grants_reference_unique" });
    t.timestamp("created_at", { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.index(["customer_id", "expires_at"]);
  });
  await knex.raw(`ALTER TABLE credit_grants
    ADD CONSTRAINT credit_grants_amount_check CHECK (amount_micros > 0 AND amount_micros < 9007199254740992),
    ADD CONSTRAINT credit_grants_remaining_check CHECK (remaining_micros >= 0 AND remaining_micros <= amount_micros)`);
  // One row per request that consumed (or tried to): its primary key is the "consumed once" rule.
  await knex.schema.createTable("credit_consumptions", (t) => {
    t.text("request_id").primary();
    t.text("customer_id").notNullable().references("credit_accounts.customer_id");
    t.bigInteger("requested_micros").notNullable();
    t.bigInteger("covered_micros").notNullable().defaultTo(0);
    t.timestamp("created_at", { useTz: true }).notNullable().defaultTo(knex.fn.now());
  });
  await knex.raw(`ALTER TABLE credit_consumptions ADD CONSTRAINT credit_consumptions_covered_check
    CHECK (covered_micros >= 0 AND covered_micros <= requested_micros)`);
  await knex.schema.createTable("credit_entries", (t) => {
    t.bigIncrements("id").primary();
    t.text("customer_id").notNullable().references("credit_accounts.customer_id");
    t.text("kind")
      .notNullable()
      .checkIn(["grant", "consumption", "expiry", "void"], "credit_entries_kind_check");
    t.bigInteger("grant_id").notNullable().references("credit_grants.id");
    t.text("request_id").nullable().references("credit_consumptions.request_id");
    // Signed: a grant adds, everything else takes away.
    t.bigInteger("amount_micros").notNullable();
    t.timestamp("created_at", { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.index(["customer_id", "id"]);
    t.unique(["request_id", "grant_id"], { indexName: "credit_entries_request_grant_unique" });
  });
  await knex.raw(`ALTER TABLE credit_entries ADD CONSTRAINT credit_entries_sign_check CHECK (
    (kind = 'grant' AND amount_micros > 0) OR (kind <> 'grant' AND amount_micros < 0))`);
  await knex.raw(`ALTER TABLE credit_entries ADD CONSTRAINT credit_entries_request_check
    CHECK ((kind = 'consumption') = (request_id IS NOT NULL))`);
  // A grant is granted, expired and voided at most once each.
  await knex.raw(`CREATE UNIQUE INDEX credit_entries_grant_once ON credit_entries (grant_id, kind)
    WHERE kind <> 'consumption'`);
  await knex.raw(`CREATE FUNCTION credit_entries_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN RAISE EXCEPTION 'credit_entries is append-only'; END $$`);
  await knex.raw(`CREATE TRIGGER credit_entries_append_only BEFORE UPDATE OR DELETE ON credit_entries
    FOR EACH ROW EXECUTE FUNCTION credit_entries_append_only()`);

  // Plans of kind prepaid: usage paid by credits, nothing beyond the base fee on the invoice.
  await knex.raw("ALTER TABLE plans DROP CONSTRAINT plans_kind_check");
  await knex.raw(`ALTER TABLE plans ADD CONSTRAINT plans_kind_check
    CHECK (kind IN ('usage', 'tiered', 'hybrid', 'prepaid'))`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw("ALTER TABLE plans DROP CONSTRAINT plans_kind_check");
  await knex.raw(
    "ALTER TABLE plans ADD CONSTRAINT plans_kind_check CHECK (kind IN ('usage', 'tiered', 'hybrid'))",
  );
  await knex.schema.dropTable("credit_entries");
  await knex.raw("DROP FUNCTION credit_entries_append_only()");
  await knex.schema.dropTable("credit_consumptions");
  await knex.schema.dropTable("credit_grants");
  await knex.schema.dropTable("credit_accounts");
}
