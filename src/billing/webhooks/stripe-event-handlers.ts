import Stripe from "stripe";
import { z } from "zod";
import type { Db } from "../../platform/db.js";
import { PermanentError } from "../../errors.js";
import { customerStatusByStripeId, followSubscription, markDeleted } from "./customer-status.js";
import { applyInvoiceEvent, INVOICE_EVENT_STATUS, OWED_STATUSES } from "./invoices.js";
import type { StoredStripeEvent } from "./stripe-events.js";
import { applySubscription, stripeSubscriptionSchema } from "./subscriptions.js";
import { grantCheckoutTopUp, type TopUpOutcome } from "../credits/checkout.js";
import { failAutoTopUp, grantAutoTopUp, type AutoTopUpDeps } from "../credits/top-ups.js";
import type { CreditCounter } from "../credits/counter.js";

export interface StripeEventDeps extends Pick<AutoTopUpDeps, "logger" | "queues"> {
  db: Db;
  /** Credit top-ups granted here are added to the real-time balance. */
  creditCounter: Pick<CreditCounter, "adjust">;
  /** Set when STRIPE_WEBHOOK_REFETCH is on: subscriptions are read back from Stripe, not the payload. */
  stripe?: { subscriptions: Pick<Stripe["subscriptions"], "retrieve"> };
  /** Sends a customer's unreported usage to Stripe; invoice.created calls it before the invoice finalizes. */
  flushCustomer?: (customerId: string) => Promise<void>;
  /** A top-up granted credits: the customer's balance alerts are evaluated now. */
  balanceChanged?: (customerId: string) => Promise<void>;
}

export interface StripeEventOutcome {
  status: "processed" | "ignored";
  note?: string;
  /** A customer now past_due: the caller schedules the suspension check for the end of its grace. */
  pastDue?: { customerId: string; since: Date };
}

const eventSchema = z.looseObject({
  id: z.string(),
  type: z.string(),
  created: z.number().int(),
  data: z.looseObject({ object: z.looseObject({ id: z.string().optional() }) }),
});
const ref = z.union([z.string(), z.looseObject({ id: z.string() })]);
const idOf = (value: z.infer<typeof ref>) => (typeof value === "string" ? value : value.id);
const invoiceSchema = z.looseObject({ id: z.string(), customer: ref });
const customerSchema = z.looseObject({ id: z.string() });

function parse<T>(schema: z.ZodType<T>, value: unknown, what: string): T {
  const result = schema.safeParse(value);
  if (!result.success) throw new PermanentError(`malformed ${what}: ${result.error.issues[0]?.message}`, 400);
  return result.data;
}

const ignored = (note: string): StripeEventOutcome => ({ status: "ignored", note });

/** Applies one stored Stripe event to subscriptions and customers; safe to run again for the same event. */
export async function applyStripeEvent(
  deps: StripeEventDeps,
  stored: StoredStripeEvent,
): Promise<StripeEventOutcome> {
  const event = parse(eventSchema, stored.payload, "event");
  const object = event.data.object;
  switch (event.type) {
    case "customer.subscription.created":
    case "customer.subscription.updated":
    case "customer.subscription.deleted":
      return subscriptionEvent(deps, event.created, object);
    case "invoice.created": {
      const invoice = parse(invoiceSchema, object, "invoice");
      const customer = await customerStatusByStripeId(deps.db, idOf(invoice.customer));
      if (!customer) return ignored("no customer with this Stripe customer id");
      await deps.flushCustomer?.(customer.customerId);
      return { status: "processed" };
    }
    case "invoice.payment_failed":
    case "invoice.paid":
    case "invoice.voided":
    case "invoice.marked_uncollectible":
      return invoiceEvent(deps, event.type, event.created, object);
    // Credit top-ups (README "Top-ups"): a Checkout top-up grants on its session only, an automatic
    // one on its PaymentIntent only, so no payment is granted twice.
    case "checkout.session.completed":
    case "checkout.session.async_payment_succeeded":
      return afterGrant(deps, await grantCheckoutTopUp(deps, object));
    case "payment_intent.succeeded":
      return afterGrant(deps, await grantAutoTopUp(deps, object));
    case "payment_intent.payment_failed":
      return failAutoTopUp(deps, object);
    case "customer.deleted": {
      const { id } = parse(customerSchema, object, "customer");
      await markDeleted(deps.db, id, event.created);
      return { status: "processed" };
    }
    default:
      return ignored(`event type ${event.type} is not handled`);
  }
}

async function afterGrant(deps: StripeEventDeps, outcome: TopUpOutcome): Promise<StripeEventOutcome> {
  if (outcome.grantedTo) await deps.balanceChanged?.(outcome.grantedTo);
  return { status: outcome.status, ...(outcome.note ? { note: outcome.note } : {}) };
}

async function invoiceEvent(
  deps: StripeEventDeps,
  type: string,
  created: number,
  object: unknown,
): Promise<StripeEventOutcome> {
  const invoice = parse(invoiceSchema, object, "invoice");
  const status = INVOICE_EVENT_STATUS[type]!;
  const result = await applyInvoiceEvent(deps.db, {
    invoiceId: invoice.id,
    stripeCustomerId: idOf(invoice.customer),
    status,
    created,
  });
  if (!result) return ignored("no customer with this Stripe customer id");
  if (!result.applied) return ignored("an event at least as new was already applied to this invoice");
  // Read back rather than trust the update: a retry of this event must still schedule the check.
  return OWED_STATUSES.includes(status) && result.status === "past_due" && result.pastDueSince
    ? { status: "processed", pastDue: { customerId: result.customerId, since: result.pastDueSince } }
    : { status: "processed" };
}

async function subscriptionEvent(
  deps: StripeEventDeps,
  created: number,
  object: unknown,
): Promise<StripeEventOutcome> {
  let source = object;
  if (deps.stripe) {
    const id = parse(z.looseObject({ id: z.string() }), object, "subscription").id;
    source = await refetch(deps.stripe, id);
  }
  const sub = parse(stripeSubscriptionSchema, source, "subscription");
  // The subscription and the customer it drives change together, or a retry would see half of it.
  return deps.db.transaction(async (trx) => {
    const applied = await applySubscription(trx, sub, created, { fresh: deps.stripe !== undefined });
    if (!applied) return ignored("an event at least as new was already applied to this subscription");
    if (applied.customerId) await followSubscription(trx, applied.customerId, sub.status, applied.planId);
    return { status: "processed" };
  });
}

async function refetch(stripe: NonNullable<StripeEventDeps["stripe"]>, id: string): Promise<unknown> {
  try {
    return await stripe.subscriptions.retrieve(id);
  } catch (err) {
    // 4xx (e.g. the subscription is not in this account) cannot get better; anything else is retried.
    if (
      err instanceof Stripe.errors.StripeInvalidRequestError ||
      err instanceof Stripe.errors.StripeAuthenticationError
    ) {
      throw new PermanentError(
        `re-fetching subscription ${id}: ${err.message}`,
        400,
        "invalid_request_error",
        null,
        {
          cause: err,
        },
      );
    }
    throw err;
  }
}
