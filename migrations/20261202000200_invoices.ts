import type { Knex } from "knex";

// One row per Stripe invoice, so a customer's suspension follows what it still owes rather than
// the latest invoice event. `last_event_created` is the invoice's own watermark (events arrive in
// any order); `status` is unpaid | paid | voided | uncollectible. The partial index serves the
// "does this customer still owe anything" check that every invoice event and suspension runs.
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable("invoices", (t) => {
    t.text("id").primary();
    t.text("customer_id").notNullable().references("id").inTable("customers").onDelete("CASCADE");
    t.text("status")
      .notNullable()
      .checkIn(["unpaid", "paid", "voided", "uncollectible"], "invoices_status_check");
    t.bigInteger("last_event_created").notNullable();
    t.timestamp("created_at", { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp("updated_at", { useTz: true }).notNullable().defaultTo(knex.fn.now());
  });
  await knex.raw(
    "CREATE INDEX invoices_owed_idx ON invoices (customer_id) WHERE status IN ('unpaid', 'uncollectible')",
  );
  // Rebuild what the stored events already say, so a customer suspended before this migration is
  // not reactivated by the payment of some other invoice. Per invoice: a paid or voided event wins
  // (both are final in Stripe), otherwise the newest event.
  await knex.raw(`
    INSERT INTO invoices (id, customer_id, status, last_event_created)
    SELECT DISTINCT ON (e.payload #>> '{data,object,id}')
      e.payload #>> '{data,object,id}',
      c.id,
      CASE e.type
        WHEN 'invoice.payment_failed' THEN 'unpaid'
        WHEN 'invoice.paid' THEN 'paid'
        WHEN 'invoice.voided' THEN 'voided'
        ELSE 'uncollectible'
      END,
      e.created
    FROM stripe_events e
    JOIN customers c ON c.stripe_customer_id = COALESCE(
      e.payload #>> '{data,object,customer,id}',
      CASE WHEN jsonb_typeof(e.payload #> '{data,object,customer}') = 'string'
        THEN e.payload #>> '{data,object,customer}' END
    )
    WHERE e.type IN ('invoice.payment_failed', 'invoice.paid', 'invoice.voided', 'invoice.marked_uncollectible')
      AND e.status IN ('processed', 'ignored')
      AND e.payload #>> '{data,object,id}' IS NOT NULL
    ORDER BY e.payload #>> '{data,object,id}',
      e.type IN ('invoice.paid', 'invoice.voided') DESC,
      e.created DESC,
      e.type = 'invoice.marked_uncollectible' DESC
  `);
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable("invoices");
}
