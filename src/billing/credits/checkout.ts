import type Stripe from "stripe";
import { z } from "zod";
import { PermanentError } from "../../errors.js";
import type { Db } from "../../platform/db.js";
import type { CreditCounter } from "./counter.js";
import { grantCredits } from "./grants.js";

/** Stripe charges whole cents; credits are micro-dollars. */
export const MICROS_PER_CENT = 10_000;

/** The metadata keys meterline puts on a Checkout Session it creates, read back on completion. */
export const CHECKOUT_METADATA = { customer: "meterline_customer_id", amount: "amount_micros" } as const;

/**
 * What is wrong with a top-up amount (Checkout or automatic), or undefined: an integer number of
 * micro-dollars within the configured bounds, in whole cents since Stripe charges cents.
 */
export function topUpAmountProblem(
  micros: number,
  bounds: { minMicros: number; maxMicros: number },
): string | undefined {
  if (!Number.isSafeInteger(micros) || micros < bounds.minMicros || micros > bounds.maxMicros)
    return `must be an integer from ${bounds.minMicros} to ${bounds.maxMicros} (micro-dollars: 1000000 = $1)`;
  if (micros % MICROS_PER_CENT !== 0)
    return `must be whole cents, a multiple of ${MICROS_PER_CENT} (Stripe charges cents)`;
  return undefined;
}

/** The Stripe customer a meterline customer pays with, or null when it is not linked to Stripe. */
export async function stripeCustomerIdOf(db: Db, customerId: string): Promise<string | null | undefined> {
  const row = await db("customers").where({ id: customerId }).first("stripe_customer_id");
  return row === undefined ? undefined : ((row.stripe_customer_id as string | null) ?? null);
}

export interface CreditCheckout {
  id: string;
  url: string;
  amountMicros: number;
  expiresAt: Date;
}

/**
 * Opens a Stripe Checkout Session (mode payment) for `amountMicros` of credits, a whole number of
 * cents the caller validated. The session names the meterline customer and the amount in its
 * metadata, which is what `checkout.session.completed` grants on; the card is saved for off-session
 * use so an automatic top-up can charge it later.
 */
export async function createCreditCheckout(
  stripe: Pick<Stripe, "checkout">,
  input: {
    customerId: string;
    stripeCustomerId: string;
    amountMicros: number;
    successUrl: string;
    cancelUrl: string;
  },
): Promise<CreditCheckout> {
  const session = await stripe.checkout.sessions.create({
    mode: "payment",
    customer: input.stripeCustomerId,
    line_items: [
      {
        quantity: 1,
        price_data: {
          currency: "usd",
          unit_amount: input.amountMicros / MICROS_PER_CENT,
          product_data: { name: "meterline credits" },
        },
      },
    ],
    metadata: {
      [CHECKOUT_METADATA.customer]: input.customerId,
      [CHECKOUT_METADATA.amount]: String(input.amountMicros),
    },
    payment_intent_data: { setup_future_usage: "off_session" },
    success_url: input.successUrl,
    cancel_url: input.cancelUrl,
  });
  return {
    id: session.id,
    url: session.url ?? "",
    amountMicros: input.amountMicros,
    expiresAt: new Date(session.expires_at * 1000),
  };
}

const sessionSchema = z.looseObject({
  id: z.string(),
  payment_status: z.string(),
  amount_total: z.number().int().nullable(),
  currency: z.string().nullable(),
  customer: z.union([z.string(), z.looseObject({ id: z.string() }), z.null()]),
  metadata: z.record(z.string(), z.string()).nullable(),
});

export type TopUpOutcome = {
  status: "processed" | "ignored";
  note?: string;
  /** The customer whose balance this event's grant raised; absent when nothing was granted. */
  grantedTo?: string;
};

/**
 * Grants the credits a paid Checkout Session bought, once: the grant's reference is the session id,
 * so `checkout.session.completed` delivered again, late or concurrently grants nothing more. The
 * session's PaymentIntent (`payment_intent.succeeded`) never grants: one event kind per payment.
 * The amount is the session's `amount_total` and must match the metadata meterline wrote; a
 * mismatch, another currency or a Stripe customer that is not this customer's is refused for good
 * (the event goes to dead letters for an operator) rather than granting a guess. Sessions meterline
 * did not create, and unpaid ones (an async payment still pending), are ignored.
 */
export async function grantCheckoutTopUp(
  deps: { db: Db; creditCounter: Pick<CreditCounter, "adjust"> },
  object: unknown,
): Promise<TopUpOutcome> {
  const parsed = sessionSchema.safeParse(object);
  if (!parsed.success) throw new PermanentError(`malformed checkout.session: ${parsed.error.message}`, 400);
  const session = parsed.data;
  const customerId = session.metadata?.[CHECKOUT_METADATA.customer];
  if (!customerId) return { status: "ignored", note: "not a meterline credit checkout" };
  if (session.payment_status !== "paid")
    return { status: "ignored", note: `payment_status is ${session.payment_status}, not paid` };

  const amountMicros = (session.amount_total ?? 0) * MICROS_PER_CENT;
  const refuse = (why: string) =>
    new PermanentError(`checkout.session ${session.id} not granted: ${why}`, 400, "invalid_request_error");
  if (session.currency !== "usd") throw refuse(`currency is ${session.currency}, not usd`);
  if (String(amountMicros) !== session.metadata?.[CHECKOUT_METADATA.amount])
    throw refuse(`amount_total ${session.amount_total} ¢ differs from metadata amount_micros`);
  const linked = await stripeCustomerIdOf(deps.db, customerId);
  if (linked === undefined) throw refuse(`no customer ${customerId}`);
  const paidBy = typeof session.customer === "string" ? session.customer : (session.customer?.id ?? null);
  if (paidBy !== null && linked !== paidBy)
    throw refuse(`Stripe customer ${paidBy} is not ${customerId}'s (${linked ?? "none"})`);

  const { grant, created } = await grantCredits(deps.db, {
    customerId,
    source: "purchased",
    amountMicros,
    reference: session.id,
  });
  if (grant.customerId !== customerId) throw refuse(`its id was granted to ${grant.customerId}`);
  if (!created) return { status: "processed", note: "already granted" };
  await deps.creditCounter.adjust(customerId, grant.amountMicros);
  return { status: "processed", grantedTo: customerId };
}
