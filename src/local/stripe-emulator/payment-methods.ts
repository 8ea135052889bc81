import type { Ctx, Route, State } from "./state.js";
import { invalid, noSuch } from "./api-error.js";
import { paginate } from "./paginate.js";
import { optStr } from "./params.js";
import { newId, type Obj } from "./util.js";

// Card PaymentMethods. As in Stripe's test mode, a card's number decides what charging it does:
// the test tokens below stand for Stripe's test cards, and a declining card is one whose last4 is
// that of a declining test card.

interface TestCard {
  brand: string;
  last4: string;
}

const TEST_CARDS: Record<string, TestCard> = {
  pm_card_visa: { brand: "visa", last4: "4242" },
  pm_card_mastercard: { brand: "mastercard", last4: "4444" },
  /** 4000 0000 0000 0002: every charge is declined (card_declined, generic_decline). */
  pm_card_chargeDeclined: { brand: "visa", last4: "0002" },
  /** 4000 0000 0000 0341: attaches to a customer fine; every charge is declined. */
  pm_card_chargeCustomerFail: { brand: "visa", last4: "0341" },
};

const DECLINING_LAST4 = new Set(["0002", "0341"]);

function paymentMethodObject(state: State, card: TestCard, customer: string | null): Obj {
  const id = newId("pm");
  return {
    id,
    object: "payment_method",
    allow_redisplay: "unspecified",
    billing_details: {
      address: { city: null, country: null, line1: null, line2: null, postal_code: null, state: null },
      email: null,
      name: null,
      phone: null,
      tax_id: null,
    },
    card: cardDetails(card, id),
    created: state.now(),
    customer,
    livemode: false,
    metadata: {},
    type: "card",
  };
}

function cardDetails(card: TestCard, id: string): Obj {
  return {
    brand: card.brand,
    checks: { address_line1_check: null, address_postal_code_check: null, cvc_check: "pass" },
    country: "US",
    display_brand: card.brand,
    exp_month: 12,
    exp_year: new Date().getUTCFullYear() + 3,
    fingerprint: `${card.last4}${id.slice(-12)}`,
    funding: "credit",
    generated_from: null,
    last4: card.last4,
    networks: { available: [card.brand], preferred: null },
    regulated_status: "unregulated",
    three_d_secure_usage: { supported: true },
    wallet: null,
  };
}

/** A test token (`pm_card_visa`…) becomes a new stored PaymentMethod; an id must be stored. */
export function resolvePaymentMethod(state: State, ref: string, param = "payment_method"): Obj {
  const card = TEST_CARDS[ref];
  if (card) return state.put(paymentMethodObject(state, card, null));
  const pm = state.get("payment_method", ref);
  if (!pm) throw noSuch("PaymentMethod", ref, param, 400);
  return pm;
}

export function declines(pm: Obj): boolean {
  const card = pm.card as { last4?: string } | undefined;
  return DECLINING_LAST4.has(String(card?.last4));
}

/** Saves a card to a customer, as a payment with `setup_future_usage` does. */
export function attach(state: State, pm: Obj, customer: string): Obj {
  return state.put({ ...pm, customer });
}

/** The customer's saved cards, newest first. */
export const savedCards = (state: State, customer: string): Obj[] =>
  state.list("payment_method", (o) => o.customer === customer);

/**
 * Turns the customer's saved cards into the declining 0341 test card (or back into 4242): what a
 * card that expired or was reported lost does to later off-session charges.
 */
export function setCardsFailing(state: State, customer: string, failing: boolean): number {
  const cards = savedCards(state, customer);
  const card = failing ? TEST_CARDS.pm_card_chargeCustomerFail : TEST_CARDS.pm_card_visa;
  for (const pm of cards) state.put({ ...pm, card: cardDetails(card as TestCard, String(pm.id)) });
  return cards.length;
}

function listCustomerPaymentMethods(ctx: Ctx): Obj {
  const customer = ctx.pathParams.id ?? "";
  if (!ctx.state.customerExists(customer)) throw noSuch("customer", customer);
  const type = optStr(ctx.params, "type");
  if (type !== undefined && type !== "card") throw invalid(`Invalid type: ${type}`, "type");
  return paginate(savedCards(ctx.state, customer), ctx.params, `/v1/customers/${customer}/payment_methods`);
}

export const paymentMethodRoutes: Route[] = [
  {
    method: "GET",
    template: "/v1/payment_methods/:id",
    handler: (ctx) => ctx.state.find("payment_method", ctx.pathParams.id ?? "", "PaymentMethod"),
  },
  { method: "GET", template: "/v1/customers/:id/payment_methods", handler: listCustomerPaymentMethods },
];
