import type { Db } from "../../platform/db.js";

/**
 * Stripe invoices, one row each, and the customer status they drive. A customer becomes past_due
 * when an invoice of it is owed, and active again only when none is owed any more — whatever the
 * order in which the events of its different invoices arrive.
 */

export type InvoiceStatus = "unpaid" | "paid" | "voided" | "uncollectible";

/**
 * What the customer still owes. "uncollectible" is Stripe's write-off: the merchant gave up
 * collecting, but the money was not paid, so it keeps the customer past_due/suspended exactly as an
 * unpaid invoice does. Lifting the suspension on a write-off would hand service back to the
 * customers least likely to pay. Paying the invoice later (Stripe allows it) or voiding it settles it.
 */
export const OWED_STATUSES: readonly InvoiceStatus[] = ["unpaid", "uncollectible"];

/** The invoice events that change what a customer owes, and the status each leaves the invoice in. */
export const INVOICE_EVENT_STATUS: Readonly<Record<string, InvoiceStatus>> = {
  "invoice.payment_failed": "unpaid",
  "invoice.paid": "paid",
  "invoice.voided": "voided",
  "invoice.marked_uncollectible": "uncollectible",
};

export interface InvoiceEvent {
  invoiceId: string;
  stripeCustomerId: string;
  status: InvoiceStatus;
  /** `event.created`: the invoice's watermark. */
  created: number;
}

export interface InvoiceEventResult {
  /** False when the invoice already holds this event's news or newer: nothing changed. */
  applied: boolean;
  customerId: string;
  status: string;
  pastDueSince: Date | null;
}

/** The customer's invoices still owed, for NOT EXISTS / EXISTS checks. */
export function owedInvoices(db: Db, customerId: string) {
  return db("invoices")
    .where({ customer_id: customerId })
    .whereIn("status", OWED_STATUSES)
    .select(db.raw("1"));
}

/**
 * Records one invoice event and moves the customer: owed → active becomes past_due (its grace
 * period starts); settled → past_due/suspended becomes active if no other invoice is owed.
 * Undefined when no customer has this Stripe id.
 *
 * The customer row is locked first. Without it two payments of the customer's last two invoices,
 * committed side by side, would each still see the other invoice unpaid and neither would
 * reactivate. With it, the events of one customer apply one after the other.
 */
export async function applyInvoiceEvent(
  db: Db,
  event: InvoiceEvent,
): Promise<InvoiceEventResult | undefined> {
  return db.transaction(async (trx) => {
    const customer = await trx("customers")
      .where({ stripe_customer_id: event.stripeCustomerId })
      .forUpdate()
      .first("id");
    if (!customer) return undefined;
    const customerId: string = customer.id;

    // Paid and voided are final in Stripe, so nothing moves an invoice out of them. Otherwise the
    // newer event wins; in the same second the settling one does (Stripe's own order within one
    // second is not knowable). The same event again re-applies, so a retry behaves as the first try.
    const upserted = await trx.raw(
      `INSERT INTO invoices AS i (id, customer_id, status, last_event_created)
       VALUES (?, ?, ?, ?)
       ON CONFLICT (id) DO UPDATE
         SET status = EXCLUDED.status, last_event_created = EXCLUDED.last_event_created, updated_at = now()
         WHERE (i.status = EXCLUDED.status AND i.last_event_created = EXCLUDED.last_event_created)
            OR (i.status NOT IN ('paid', 'voided') AND (
                  EXCLUDED.last_event_created > i.last_event_created
               OR (EXCLUDED.last_event_created = i.last_event_created AND EXCLUDED.status <> 'unpaid')))
       RETURNING i.id`,
      [event.invoiceId, customerId, event.status, event.created],
    );
    const applied = upserted.rows.length > 0;

    if (applied && OWED_STATUSES.includes(event.status)) {
      await trx("customers")
        .where({ id: customerId, status: "active" })
        .update({ status: "past_due", past_due_since: trx.fn.now(), updated_at: trx.fn.now() });
    } else if (applied) {
      await trx("customers")
        .where({ id: customerId })
        .whereIn("status", ["past_due", "suspended"])
        .whereNotExists(owedInvoices(trx, customerId))
        .update({ status: "active", past_due_since: null, updated_at: trx.fn.now() });
    }
    const row = await trx("customers").where({ id: customerId }).first("status", "past_due_since");
    return { applied, customerId, status: row.status, pastDueSince: row.past_due_since };
  });
}
