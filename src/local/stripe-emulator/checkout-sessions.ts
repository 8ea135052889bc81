import { invalid, missingParam, noSuch } from "./api-error.js";
import { mergeMetadata, optArr, optInt, optObj, optStr, rejectUnknown } from "./params.js";
import type { Ctx, Route, State } from "./state.js";
import { isObj, newId, type Obj } from "./util.js";

// Checkout Sessions in `payment` mode: what a hosted top-up page is created with. The session is
// paid by completing it (./checkout-complete.ts), as a user paying in the browser would.

const CREATE_PARAMS = [
  "allow_promotion_codes",
  "billing_address_collection",
  "cancel_url",
  "client_reference_id",
  "currency",
  "customer",
  "customer_creation",
  "customer_email",
  "expires_at",
  "line_items",
  "locale",
  "metadata",
  "mode",
  "payment_intent_data",
  "payment_method_types",
  "submit_type",
  "success_url",
  "ui_mode",
];
const INTENT_DATA_PARAMS = ["description", "metadata", "receipt_email", "setup_future_usage"];
const DAY = 24 * 60 * 60;

/** What the session's PaymentIntent is made with when it is paid; not part of the session object. */
export interface CheckoutPayment {
  id: string;
  object: "emulator.checkout_payment";
  metadata: Obj;
  description: string | null;
  setup_future_usage: string | null;
}

export const checkoutPaymentId = (sessionId: string): string => `${sessionId}#payment`;

interface LineItem {
  currency: string;
  amount: number;
}

function lineItem(state: State, raw: unknown, i: number): LineItem {
  const label = `line_items[${i}]`;
  if (!isObj(raw)) throw invalid("Invalid line item", label);
  rejectUnknown(raw, ["price", "price_data", "quantity"], label);
  const quantity = optInt(raw, "quantity", `${label}[quantity]`) ?? 1;
  if (quantity < 1) throw invalid("Quantity must be at least 1.", `${label}[quantity]`);
  const priceId = optStr(raw, "price", `${label}[price]`);
  const data = optObj(raw, "price_data", `${label}[price_data]`);
  if ((priceId === undefined) === (data === undefined)) {
    throw invalid(`You must specify exactly one of price or price_data.`, `${label}[price]`);
  }
  const price = priceId === undefined ? undefined : state.get("price", priceId);
  if (priceId !== undefined && !price) throw noSuch("price", priceId, `${label}[price]`, 400);
  if (price?.type === "recurring") {
    throw invalid("You specified `payment` mode but passed a recurring price.", `${label}[price]`);
  }
  const source = price ?? data ?? {};
  const unit = optInt(source, "unit_amount", `${label}[price_data][unit_amount]`);
  if (unit === undefined || unit === null) throw missingParam(`${label}[price_data][unit_amount]`);
  if (data !== undefined) {
    const product = optObj(data, "product_data", `${label}[price_data][product_data]`);
    if (optStr(data, "product") === undefined && optStr(product ?? {}, "name") === undefined)
      throw missingParam(`${label}[price_data][product_data][name]`);
  }
  const currency = optStr(source, "currency", `${label}[price_data][currency]`);
  if (currency === undefined) throw missingParam(`${label}[price_data][currency]`);
  return { currency: currency.toLowerCase(), amount: unit * quantity };
}

function createCheckoutSession(ctx: Ctx): Obj {
  const { params: p, state } = ctx;
  rejectUnknown(p, CREATE_PARAMS);
  const mode = optStr(p, "mode");
  if (mode === undefined) throw missingParam("mode");
  if (mode !== "payment") throw invalid(`The emulator supports mode=payment only, not ${mode}.`, "mode");
  const customer = optStr(p, "customer") ?? null;
  if (customer !== null && !state.customerExists(customer))
    throw noSuch("customer", customer, "customer", 400);
  const items = (optArr(p, "line_items") ?? []).map((raw, i) => lineItem(state, raw, i));
  if (items.length === 0) throw missingParam("line_items");
  const currency = items[0]?.currency ?? "usd";
  if (items.some((it) => it.currency !== currency)) {
    throw invalid("All line items must be in the same currency.", "line_items");
  }
  const intentData = optObj(p, "payment_intent_data") ?? {};
  rejectUnknown(intentData, INTENT_DATA_PARAMS, "payment_intent_data");
  const futureUsage = optStr(intentData, "setup_future_usage", "payment_intent_data[setup_future_usage]");
  if (futureUsage !== undefined && futureUsage !== "off_session" && futureUsage !== "on_session") {
    throw invalid(`Invalid setup_future_usage: ${futureUsage}`, "payment_intent_data[setup_future_usage]");
  }
  const id = newId("cs_test", 58);
  const amount = items.reduce((sum, it) => sum + it.amount, 0);
  const created = state.now();
  state.put({
    id: checkoutPaymentId(id),
    object: "emulator.checkout_payment",
    metadata: mergeMetadata({}, intentData),
    description: optStr(intentData, "description") ?? null,
    setup_future_usage: futureUsage ?? null,
  } satisfies CheckoutPayment);
  return state.put({
    id,
    object: "checkout.session",
    adaptive_pricing: { enabled: false },
    after_expiration: null,
    allow_promotion_codes: null,
    amount_subtotal: amount,
    amount_total: amount,
    automatic_tax: { enabled: false, liability: null, provider: null, status: null },
    billing_address_collection: null,
    cancel_url: optStr(p, "cancel_url") ?? null,
    client_reference_id: optStr(p, "client_reference_id") ?? null,
    client_secret: null,
    created,
    currency,
    customer,
    customer_creation: customer === null ? (optStr(p, "customer_creation") ?? "if_required") : null,
    customer_details: null,
    customer_email: optStr(p, "customer_email") ?? null,
    discounts: [],
    expires_at: optInt(p, "expires_at") ?? created + DAY,
    invoice: null,
    livemode: false,
    locale: optStr(p, "locale") ?? null,
    metadata: mergeMetadata({}, p),
    mode,
    payment_intent: null,
    payment_link: null,
    payment_method_collection: "if_required",
    payment_method_types: ["card"],
    payment_status: "unpaid",
    setup_intent: null,
    status: "open",
    submit_type: optStr(p, "submit_type") ?? null,
    subscription: null,
    success_url: optStr(p, "success_url") ?? null,
    total_details: { amount_discount: 0, amount_shipping: 0, amount_tax: 0 },
    ui_mode: "hosted",
    url: `${state.baseUrl}/_emulator/checkout_sessions/${id}`,
  });
}

export const checkoutSessionRoutes: Route[] = [
  { method: "POST", template: "/v1/checkout/sessions", handler: createCheckoutSession },
  {
    method: "GET",
    template: "/v1/checkout/sessions/:id",
    handler: (ctx) => ctx.state.find("checkout.session", ctx.pathParams.id ?? "", "checkout.session"),
  },
];
