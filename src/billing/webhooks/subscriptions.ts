import { z } from "zod";
import type { Db } from "../../platform/db.js";
import { recordPeriod } from "../ledger/period-history.js";

/** The parts of a Stripe subscription (API 2026-10-28.endive: periods live on the items) we keep. */
export const stripeSubscriptionSchema = z.looseObject({
  id: z.string(),
  customer: z.union([z.string(), z.looseObject({ id: z.string() })]),
  status: z.string(),
  items: z.looseObject({
    data: z.array(
      z.looseObject({
        price: z.union([z.string(), z.looseObject({ id: z.string() })]),
        current_period_start: z.number().int().nullish(),
        current_period_end: z.number().int().nullish(),
      }),
    ),
  }),
});
export type StripeSubscription = z.infer<typeof stripeSubscriptionSchema>;

/** Subscription statuses after which the customer has no paid service from it. */
export const ENDED_STATUSES = ["canceled", "incomplete_expired"];

const idOf = (value: string | { id: string }) => (typeof value === "string" ? value : value.id);

/** The plan whose `stripe_price_ids` (an object of price ids, or an array) contains this price. */
export async function planForPrice(db: Db, priceId: string): Promise<string | undefined> {
  const row = await db("plans")
    .whereRaw(
      `(jsonb_typeof(stripe_price_ids) = 'object'
          AND EXISTS (SELECT 1 FROM jsonb_each_text(stripe_price_ids) e WHERE e.value = ?))
        OR (jsonb_typeof(stripe_price_ids) = 'array' AND jsonb_exists(stripe_price_ids, ?))`,
      [priceId, priceId],
    )
    .orderBy("id")
    .first("id");
  return row?.id;
}

/**
 * Writes a subscription's state if `created` is newer than the last event applied to it (the
 * per-object watermark), so an old event delivered late never overwrites a newer one. With
 * `fresh` (the object was just re-fetched from Stripe) an event of the same second applies too.
 * Returns the local customer id when the write happened, null for an unknown customer, undefined
 * when the event was too old. Its period goes to the history either way; pass a transaction.
 */
export async function applySubscription(
  db: Db,
  sub: StripeSubscription,
  created: number,
  { fresh = false } = {},
): Promise<{ customerId: string | null; planId: string | null } | undefined> {
  // A hybrid subscription has a flat and a metered item: the plan is the first item whose price maps.
  let planId: string | null = null;
  let item = sub.items.data[0];
  for (const candidate of sub.items.data) {
    const mapped = await planForPrice(db, idOf(candidate.price));
    if (mapped) {
      planId = mapped;
      item = candidate;
      break;
    }
  }
  const stripeCustomerId = idOf(sub.customer);
  const toDate = (s: number | null | undefined) => (s == null ? null : new Date(s * 1000));
  const rows: Array<{ customer_id: string | null; plan_id: string | null }> = await db("subscriptions")
    .insert({
      id: sub.id,
      customer_id: db("customers").where({ stripe_customer_id: stripeCustomerId }).select("id"),
      stripe_customer_id: stripeCustomerId,
      status: sub.status,
      stripe_price_id: item ? idOf(item.price) : null,
      plan_id: planId,
      current_period_start: toDate(item?.current_period_start),
      current_period_end: toDate(item?.current_period_end),
      last_event_created: created,
    })
    .onConflict("id")
    .merge({
      customer_id: db.raw("excluded.customer_id"),
      stripe_customer_id: db.raw("excluded.stripe_customer_id"),
      status: db.raw("excluded.status"),
      stripe_price_id: db.raw("excluded.stripe_price_id"),
      plan_id: db.raw("excluded.plan_id"),
      current_period_start: db.raw("excluded.current_period_start"),
      current_period_end: db.raw("excluded.current_period_end"),
      last_event_created: db.raw("GREATEST(subscriptions.last_event_created, excluded.last_event_created)"),
      updated_at: db.fn.now(),
    })
    .where("subscriptions.last_event_created", fresh ? "<=" : "<", created)
    .returning(["customer_id", "plan_id"]);
  // Even an event too old for the current state still tells of a period the flush must cut at.
  const start = toDate(item?.current_period_start);
  const end = toDate(item?.current_period_end);
  if (start && end) await recordPeriod(db, { subscriptionId: sub.id, stripeCustomerId, start, end, created });
  const row = rows[0];
  return row ? { customerId: row.customer_id, planId: row.plan_id } : undefined;
}
