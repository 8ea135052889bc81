import { newId, type Obj } from "./util.js";

/** Realistic Stripe objects in the 2026-10-28.endive shape, for webhooks, tests and the demo. */

export interface SubscriptionObjectParams {
  id?: string;
  customer: string;
  status: string;
  priceId: string;
  periodStart: number;
  periodEnd: number;
  /** Several items instead of one `priceId` item. */
  items?: Array<{ price: string | Obj; id?: string; quantity?: number }>;
  itemId?: string;
  quantity?: number;
  metadata?: Record<string, string>;
  cancelAtPeriodEnd?: boolean;
  canceledAt?: number | null;
  created?: number;
  currency?: string;
}

/** Subscription without top-level current_period_*: the period lives on each item. */
export function subscriptionObject(p: SubscriptionObjectParams): Obj {
  const id = p.id ?? newId("sub");
  const created = p.created ?? p.periodStart;
  const itemSpecs = p.items ?? [{ price: p.priceId, id: p.itemId, quantity: p.quantity }];
  const data = itemSpecs.map((it) => {
    const item: Obj = {
      id: it.id ?? newId("si", 14),
      object: "subscription_item",
      created,
      current_period_end: p.periodEnd,
      current_period_start: p.periodStart,
      discounts: [],
      metadata: {},
      price: typeof it.price === "string" ? { id: it.price, object: "price" } : it.price,
      subscription: id,
      tax_rates: [],
    };
    if (it.quantity !== undefined) item.quantity = it.quantity;
    return item;
  });
  const ended = p.status === "canceled" || p.status === "incomplete_expired";
  return {
    id,
    object: "subscription",
    application: null,
    billing_cycle_anchor: p.periodStart,
    cancel_at: p.cancelAtPeriodEnd ? p.periodEnd : null,
    cancel_at_period_end: p.cancelAtPeriodEnd ?? false,
    canceled_at: p.canceledAt ?? (ended ? p.periodEnd : null),
    collection_method: "charge_automatically",
    created,
    currency: p.currency ?? "usd",
    customer: p.customer,
    days_until_due: null,
    default_payment_method: null,
    description: null,
    discounts: [],
    ended_at: ended ? (p.canceledAt ?? p.periodEnd) : null,
    items: {
      object: "list",
      data,
      has_more: false,
      total_count: data.length,
      url: `/v1/subscription_items?subscription=${id}`,
    },
    latest_invoice: null,
    livemode: false,
    metadata: p.metadata ?? {},
    pause_collection: null,
    start_date: created,
    status: p.status,
    test_clock: null,
    trial_end: null,
    trial_start: null,
  };
}

export interface InvoiceObjectParams {
  id?: string;
  customer: string;
  subscription: string;
  status: string;
  amount_due: number;
  amount_paid?: number;
  currency?: string;
  billing_reason?: string;
  periodStart?: number;
  periodEnd?: number;
  created?: number;
  metadata?: Record<string, string>;
}

/** Invoice whose subscription is under `parent.subscription_details.subscription` (no top-level `subscription`). */
export function invoiceObject(p: InvoiceObjectParams): Obj {
  const id = p.id ?? newId("in");
  const created = p.created ?? Math.floor(Date.now() / 1000);
  const paid = p.amount_paid ?? (p.status === "paid" ? p.amount_due : 0);
  const finalized = p.status !== "draft";
  return {
    id,
    object: "invoice",
    account_country: "US",
    amount_due: p.amount_due,
    amount_paid: paid,
    amount_remaining: Math.max(0, p.amount_due - paid),
    attempt_count: p.status === "paid" || p.status === "open" ? 1 : 0,
    attempted: p.status === "paid" || p.status === "open",
    auto_advance: p.status === "draft" || p.status === "open",
    billing_reason: p.billing_reason ?? "subscription_cycle",
    collection_method: "charge_automatically",
    created,
    currency: p.currency ?? "usd",
    customer: p.customer,
    due_date: null,
    hosted_invoice_url: null,
    lines: { object: "list", data: [], has_more: false, total_count: 0, url: `/v1/invoices/${id}/lines` },
    livemode: false,
    metadata: p.metadata ?? {},
    next_payment_attempt: null,
    number: finalized ? `EMU-${id.slice(-6).toUpperCase()}` : null,
    parent: {
      type: "subscription_details",
      quote_details: null,
      subscription_details: { metadata: {}, subscription: p.subscription },
    },
    period_end: p.periodEnd ?? created,
    period_start: p.periodStart ?? created,
    status: p.status,
    status_transitions: {
      finalized_at: finalized ? created : null,
      marked_uncollectible_at: null,
      paid_at: p.status === "paid" ? created : null,
      voided_at: null,
    },
    subtotal: p.amount_due,
    total: p.amount_due,
  };
}
