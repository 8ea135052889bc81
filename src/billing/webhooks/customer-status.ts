import type { Db } from "../../platform/db.js";
import { owedInvoices } from "./invoices.js";
import { ENDED_STATUSES } from "./subscriptions.js";

/**
 * Customer status driven by Stripe billing events other than invoices (those are in invoices.ts,
 * with a watermark per invoice). `customer.deleted` keeps a watermark per customer
 * (`status_event_created`): an older event does not change the status. Each function is one
 * statement, so concurrent events cannot interleave.
 */

export interface PastDueState {
  customerId: string;
  status: string;
  pastDueSince: Date | null;
}

/** customer.deleted: the customer is canceled. */
export async function markDeleted(db: Db, stripeCustomerId: string, created: number): Promise<void> {
  await db("customers")
    .where({ stripe_customer_id: stripeCustomerId })
    .where("status_event_created", "<", created)
    .update({
      status: "canceled",
      past_due_since: null,
      status_event_created: created,
      updated_at: db.fn.now(),
    });
}

/** The customer's status, read after an event so a retry can still schedule its follow-up. */
export async function customerStatusByStripeId(
  db: Db,
  stripeCustomerId: string,
): Promise<PastDueState | undefined> {
  const row = await db("customers")
    .where({ stripe_customer_id: stripeCustomerId })
    .first("id", "status", "past_due_since");
  return row ? { customerId: row.id, status: row.status, pastDueSince: row.past_due_since } : undefined;
}

/**
 * At the end of a grace period: suspend the customer if it is still past_due in the same episode
 * (`since`), the grace period has run out and some invoice is still owed. Paid in the meantime, or
 * a later episode with its own check, makes this a no-op. "nothing-owed" is a past_due customer
 * with no owed invoice on record (set by hand, or from before invoices were tracked): it is not
 * suspended, since nothing says it has to pay.
 */
export async function suspendIfOverdue(
  db: Db,
  customerId: string,
  since: Date,
  graceMs: number,
): Promise<"suspended" | "not-due" | "not-past-due" | "nothing-owed"> {
  // JavaScript dates carry milliseconds, Postgres microseconds: compare at millisecond precision.
  const episode = db("customers")
    .where({ id: customerId, status: "past_due" })
    .whereRaw("date_trunc('milliseconds', past_due_since) = ?", [since]);
  // A payment being applied holds the customer row until it commits; this UPDATE then waits for
  // the row, re-reads it and finds the customer active, so it cannot suspend a customer who paid.
  const updated = await episode
    .clone()
    .whereExists(owedInvoices(db, customerId))
    .where("past_due_since", "<=", db.raw("now() - make_interval(secs => ?)", [graceMs / 1000]))
    .update({ status: "suspended", updated_at: db.fn.now() })
    .returning("id");
  if (updated.length) return "suspended";
  const row = await episode.clone().first(db.raw("EXISTS (?) AS owed", [owedInvoices(db, customerId)]));
  if (!row) return "not-past-due";
  return row.owed ? "not-due" : "nothing-owed";
}

/**
 * A subscription event that applied: the customer follows the subscription's newest state, never
 * its history, so the result does not depend on delivery order. Its plan follows the mapped price;
 * ended → canceled unless another subscription still runs; active or trialing lifts a cancelation.
 * Past-due handling is left to the invoice events.
 */
export async function followSubscription(
  db: Db,
  customerId: string,
  status: string,
  planId: string | null,
): Promise<void> {
  const ended = ENDED_STATUSES.includes(status);
  const running = status === "active" || status === "trialing";
  if (!planId && !ended && !running) return;
  const query = db("customers").where({ id: customerId });
  if (ended) {
    query.whereNotExists(
      db("subscriptions")
        .where({ customer_id: customerId })
        .whereNotIn("status", ENDED_STATUSES)
        .select(db.raw("1")),
    );
  }
  await query.update({
    ...(planId ? { plan_id: planId } : {}),
    ...(ended ? { status: "canceled", past_due_since: null } : {}),
    ...(running ? { status: db.raw("CASE WHEN status = 'canceled' THEN 'active' ELSE status END") } : {}),
    updated_at: db.fn.now(),
  });
}
