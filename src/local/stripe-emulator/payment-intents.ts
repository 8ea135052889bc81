import { ApiError, invalid, missingParam, noSuch } from "./api-error.js";
import { attach, declines, resolvePaymentMethod } from "./payment-methods.js";
import { mergeMetadata, optBool, optInt, optStr, rejectUnknown, reqStr } from "./params.js";
import type { Ctx, Route, State } from "./state.js";
import { newId, type Obj } from "./util.js";

// PaymentIntents as meterline's automatic top-ups use them: created and confirmed at once, off
// session, with a saved card; a declined card answers 402 card_error with the PaymentIntent.

const CREATE_PARAMS = [
  "amount",
  "automatic_payment_methods",
  "confirm",
  "currency",
  "customer",
  "description",
  "metadata",
  "off_session",
  "payment_method",
  "payment_method_types",
  "receipt_email",
  "setup_future_usage",
  "statement_descriptor_suffix",
];

const DECLINE = {
  type: "card_error",
  code: "card_declined",
  decline_code: "generic_decline",
  doc_url: "https://stripe.com/docs/error-codes/card-declined",
  message: "Your card was declined.",
};

/** Stripe's decline: 402 card_error whose body carries the declined PaymentIntent and its card. */
export class CardDeclined extends ApiError {
  constructor(
    readonly paymentIntent: Obj,
    private readonly details: Obj,
  ) {
    super(402, DECLINE.type, DECLINE.message, { code: DECLINE.code });
  }
  override body(): Obj {
    return { error: { ...this.details, payment_intent: this.paymentIntent } };
  }
}

export interface NewPaymentIntent {
  amount: number;
  currency: string;
  customer: string | null;
  metadata: Obj;
  description?: string | null;
  setupFutureUsage?: string | null;
}

export function paymentIntentObject(state: State, p: NewPaymentIntent): Obj {
  const id = newId("pi");
  return {
    id,
    object: "payment_intent",
    amount: p.amount,
    amount_capturable: 0,
    amount_details: { tip: {} },
    amount_received: 0,
    application: null,
    automatic_payment_methods: null,
    canceled_at: null,
    cancellation_reason: null,
    capture_method: "automatic_async",
    client_secret: `${id}_secret_${newId("x", 16).slice(2)}`,
    confirmation_method: "automatic",
    created: state.now(),
    currency: p.currency,
    customer: p.customer,
    description: p.description ?? null,
    last_payment_error: null,
    latest_charge: null,
    livemode: false,
    metadata: p.metadata,
    next_action: null,
    payment_method: null,
    payment_method_types: ["card"],
    processing: null,
    receipt_email: null,
    setup_future_usage: p.setupFutureUsage ?? null,
    status: "requires_payment_method",
  };
}

/**
 * Charges the card: the PaymentIntent succeeds (saving the card to the customer when asked), or is
 * declined, goes back to requires_payment_method and is thrown in a CardDeclined. Callers send the
 * outcome's event.
 */
export function charge(state: State, intent: Obj, pm: Obj): Obj {
  const customer = typeof intent.customer === "string" ? intent.customer : null;
  if (typeof pm.customer === "string" && pm.customer !== customer) {
    throw invalid(
      `The provided PaymentMethod ${String(pm.id)} belongs to another customer.`,
      "payment_method",
    );
  }
  const chargeId = newId("ch");
  if (declines(pm)) {
    const error = { ...DECLINE, charge: chargeId, payment_method: pm };
    const failed = { ...intent, last_payment_error: error, latest_charge: chargeId, payment_method: null };
    throw new CardDeclined(state.put(failed), error);
  }
  if (customer !== null && intent.setup_future_usage !== null) attach(state, pm, customer);
  return state.put({
    ...intent,
    amount_received: intent.amount,
    latest_charge: chargeId,
    payment_method: pm.id,
    status: "succeeded",
  });
}

const missingCard = () =>
  invalid(
    "You cannot confirm this PaymentIntent because it's missing a payment method. Specify a payment method attached to the customer.",
    "payment_method",
    "payment_intent_unexpected_state",
  );

function confirmed(state: State, intent: Obj, pm: Obj): Obj {
  try {
    const paid = charge(state, intent, pm);
    state.emit("payment_intent.succeeded", paid);
    return paid;
  } catch (err) {
    if (err instanceof CardDeclined) state.emit("payment_intent.payment_failed", err.paymentIntent);
    throw err;
  }
}

function createPaymentIntent(ctx: Ctx): Obj {
  const p = ctx.params;
  rejectUnknown(p, CREATE_PARAMS);
  const amount = optInt(p, "amount");
  if (amount === undefined) throw missingParam("amount");
  if (amount < 50) throw invalid("Amount must be at least $0.50 usd", "amount", "amount_too_small");
  const customer = optStr(p, "customer") ?? null;
  if (customer !== null && !ctx.state.customerExists(customer))
    throw noSuch("customer", customer, "customer", 400);
  const confirm = optBool(p, "confirm") ?? false;
  if (optBool(p, "off_session") !== undefined && !confirm) {
    throw invalid("You may only specify `off_session` when `confirm=true`.", "off_session");
  }
  const ref = optStr(p, "payment_method");
  if (confirm && ref === undefined) throw missingCard();
  const pm = ref === undefined ? undefined : resolvePaymentMethod(ctx.state, ref);
  const intent = ctx.state.put(
    paymentIntentObject(ctx.state, {
      amount,
      currency: reqStr(p, "currency").toLowerCase(),
      customer,
      metadata: mergeMetadata({}, p),
      description: optStr(p, "description"),
      setupFutureUsage: optStr(p, "setup_future_usage"),
    }),
  );
  if (pm === undefined) return intent;
  if (!confirm) return ctx.state.put({ ...intent, payment_method: pm.id, status: "requires_confirmation" });
  return confirmed(ctx.state, intent, pm);
}

function confirmPaymentIntent(ctx: Ctx): Obj {
  rejectUnknown(ctx.params, ["off_session", "payment_method"]);
  const intent = ctx.state.find("payment_intent", ctx.pathParams.id ?? "", "payment_intent");
  if (intent.status === "succeeded") {
    throw invalid(
      "This PaymentIntent's status is succeeded, which does not allow confirming it.",
      undefined,
      "payment_intent_unexpected_state",
    );
  }
  const ref = optStr(ctx.params, "payment_method") ?? intent.payment_method;
  if (typeof ref !== "string") throw missingCard();
  return confirmed(ctx.state, intent, resolvePaymentMethod(ctx.state, ref));
}

export const paymentIntentRoutes: Route[] = [
  { method: "POST", template: "/v1/payment_intents", handler: createPaymentIntent },
  {
    method: "GET",
    template: "/v1/payment_intents/:id",
    handler: (ctx) => ctx.state.find("payment_intent", ctx.pathParams.id ?? "", "payment_intent"),
  },
  { method: "POST", template: "/v1/payment_intents/:id/confirm", handler: confirmPaymentIntent },
];
