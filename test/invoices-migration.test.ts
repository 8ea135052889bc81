import { describe, expect, it } from "vitest";
import { migrationSource } from "../migrations/index.js";
import { createCustomer } from "../src/billing/customers/customers.js";
import { useStack } from "./helpers/stack.js";

const MIGRATION = "20261202000200_invoices";
// No worker: nothing may touch the tables while the migration is down.
const stack = useStack({ worker: false });

let seq = 0;
const event = (type: string, invoice: string, customer: unknown, created: number, status = "processed") => ({
  id: `evt_migration_${++seq}`,
  type,
  created,
  status,
  payload: JSON.stringify({
    id: `evt_migration_${seq}`,
    type,
    created,
    data: { object: { id: invoice, customer } },
  }),
});

describe("migration 20261202000200_invoices", () => {
  it("rebuilds each invoice from the stored events: paid or voided wins, else the newest event", async () => {
    const db = stack.db;
    await db.migrate.down({ migrationSource, name: MIGRATION });
    expect(await db.schema.hasTable("invoices")).toBe(false);

    const customer = await createCustomer(db, { name: "Before Co", stripeCustomerId: "cus_before" });
    await db("stripe_events").insert([
      event("invoice.payment_failed", "in_paid", "cus_before", 100),
      event("invoice.paid", "in_paid", "cus_before", 110),
      event("invoice.payment_failed", "in_open", "cus_before", 120),
      // Delivered late and ignored at the time: it must not reopen the paid invoice.
      event("invoice.paid", "in_late", "cus_before", 130),
      event("invoice.payment_failed", "in_late", "cus_before", 125, "ignored"),
      event("invoice.payment_failed", "in_bad_debt", "cus_before", 140),
      event("invoice.marked_uncollectible", "in_bad_debt", "cus_before", 150, "ignored"),
      event("invoice.payment_failed", "in_void", { id: "cus_before", object: "customer" }, 160),
      event("invoice.voided", "in_void", { id: "cus_before", object: "customer" }, 170, "ignored"),
      event("invoice.payment_failed", "in_stranger", "cus_unknown", 180, "ignored"),
    ]);

    await db.migrate.up({ migrationSource, name: MIGRATION });
    const rows = await db("invoices")
      .orderBy("id")
      .select("id", "customer_id", "status", "last_event_created");
    expect(rows).toEqual([
      { id: "in_bad_debt", customer_id: customer.id, status: "uncollectible", last_event_created: 150 },
      { id: "in_late", customer_id: customer.id, status: "paid", last_event_created: 130 },
      { id: "in_open", customer_id: customer.id, status: "unpaid", last_event_created: 120 },
      { id: "in_paid", customer_id: customer.id, status: "paid", last_event_created: 110 },
      { id: "in_void", customer_id: customer.id, status: "voided", last_event_created: 170 },
    ]);
  });
});
