import { invalid } from "./api-error.js";
import { checkoutPaymentId, type CheckoutPayment } from "./checkout-sessions.js";
import { createCustomerObject } from "./customers.js";
import type { EventLog } from "./events.js";
import { CardDeclined, charge, paymentIntentObject } from "./payment-intents.js";
import { resolvePaymentMethod } from "./payment-methods.js";
import type { State } from "./state.js";
import type { CompleteCheckoutOptions, WebhookDelivery } from "./types.js";

/**
 * What paying on the hosted page does: the card is charged through a PaymentIntent (saved to the
 * customer when the session asked for `setup_future_usage`), the session becomes complete and
 * paid, and Stripe sends `payment_intent.succeeded` then `checkout.session.completed`. A declined
 * card leaves the session open, sends `payment_intent.payment_failed` and throws CardDeclined.
 * Resolves to the delivery of `checkout.session.completed`.
 */
export async function completeCheckoutSession(
  state: State,
  events: EventLog,
  id: string,
  opts: CompleteCheckoutOptions = {},
): Promise<WebhookDelivery> {
  const session = state.find("checkout.session", id, "checkout.session");
  if (session.status !== "open") {
    throw invalid(`This Checkout Session is ${String(session.status)}: it can no longer be paid.`);
  }
  const payment = state.get("emulator.checkout_payment", checkoutPaymentId(id)) as
    CheckoutPayment | undefined;
  let customer = typeof session.customer === "string" ? session.customer : null;
  // In payment mode Stripe makes a customer for a guest only when the card is to be saved.
  if (customer === null && payment?.setup_future_usage) {
    customer = String(createCustomerObject(state, { email: session.customer_email ?? undefined }).id);
  }
  const intent = state.put(
    paymentIntentObject(state, {
      amount: Number(session.amount_total),
      currency: String(session.currency),
      customer,
      metadata: payment?.metadata ?? {},
      description: payment?.description,
      setupFutureUsage: payment?.setup_future_usage,
    }),
  );
  let paid;
  try {
    paid = charge(state, intent, resolvePaymentMethod(state, opts.card ?? "pm_card_visa", "card"));
  } catch (err) {
    if (err instanceof CardDeclined) await events.emit("payment_intent.payment_failed", err.paymentIntent);
    throw err;
  }
  const email = session.customer_email ?? null;
  const completed = state.put({
    ...session,
    customer,
    customer_details: { address: null, email, name: null, phone: null, tax_exempt: "none", tax_ids: [] },
    payment_intent: paid.id,
    payment_status: "paid",
    status: "complete",
  });
  await events.emit("payment_intent.succeeded", paid);
  return events.emit("checkout.session.completed", completed);
}
