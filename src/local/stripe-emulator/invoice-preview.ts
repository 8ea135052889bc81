import type { Ctx, Route, State } from "./state.js";
import { invalid, missingParam, noSuch } from "./api-error.js";
import { optStr, rejectUnknown } from "./params.js";
import { isObj, newId, type Obj } from "./util.js";

// POST /v1/invoices/create_preview for a subscription: the invoice its current period would make
// now. Modest on purpose: one line per subscription item, metered items rated from the meter events
// the emulator holds for the item's period, licensed items at unit amount × quantity; per-unit,
// graduated and volume tiers and transform_quantity are modelled; discounts, taxes, prorations,
// customer balances and currencies other than the price's own are not. Each line's amount is
// rounded half-up to a whole cent once, as Stripe rounds a line.

/** Cents as a decimal string (up to 12 places) → integer in 10⁻¹² cents: exact, no floats. */
const SCALE = 10n ** 12n;
function scaled(decimal: string | null | undefined): bigint {
  if (decimal === null || decimal === undefined) return 0n;
  const [whole = "0", fraction = ""] = decimal.split(".");
  return BigInt(whole) * SCALE + BigInt(fraction.padEnd(12, "0").slice(0, 12));
}
const roundCents = (v: bigint): number => Number((v + SCALE / 2n) / SCALE);

interface Tier {
  up_to: number | null;
  unit_amount_decimal: string | null;
  flat_amount_decimal: string | null;
}

/** The exact amount (10⁻¹² cents) of `quantity` units of `price`. */
function priceAmount(price: Obj, quantity: number): bigint {
  const q = BigInt(quantity);
  if (price.billing_scheme !== "tiered") {
    const t = isObj(price.transform_quantity) ? price.transform_quantity : undefined;
    let units = q;
    if (t) {
      const by = BigInt(Number(t.divide_by));
      units = t.round === "up" ? (q + by - 1n) / by : q / by;
    }
    return units * scaled(price.unit_amount_decimal as string | null);
  }
  const tiers = (price.tiers ?? []) as Tier[];
  if (price.tiers_mode === "volume") {
    const tier = tiers.find((t) => t.up_to === null || quantity <= t.up_to) ?? tiers[tiers.length - 1];
    if (!tier || quantity === 0) return 0n;
    return q * scaled(tier.unit_amount_decimal) + scaled(tier.flat_amount_decimal);
  }
  let total = 0n;
  let below = 0n;
  for (const tier of tiers) {
    if (q <= below) break;
    const top = tier.up_to === null ? q : BigInt(Math.min(tier.up_to, quantity));
    total += (top - below) * scaled(tier.unit_amount_decimal) + scaled(tier.flat_amount_decimal);
    below = top;
  }
  return total;
}

/** Sum of the customer's meter events for the meter in [start, end) (the emulator's meters sum). */
function meteredQuantity(
  state: State,
  meterId: string,
  customer: string,
  start: number,
  end: number,
): number {
  const meter = state.get("billing.meter", meterId);
  if (!meter) return 0;
  return state
    .allMeterEvents()
    .filter(
      (e) =>
        e.customer === customer &&
        e.event_name === meter.event_name &&
        e.timestamp >= start &&
        e.timestamp < end,
    )
    .reduce((sum, e) => sum + e.value, 0);
}

function previewLine(state: State, sub: Obj, item: Obj, currency: string): Obj {
  const ref = item.price;
  const priceId = typeof ref === "string" ? ref : isObj(ref) ? String(ref.id) : "";
  // The stored price (with its tiers) wins over the copy on the item, which may be only an id.
  const price = state.get("price", priceId) ?? (isObj(ref) ? ref : undefined);
  if (!price) throw noSuch("price", priceId, "subscription");
  const start = Number(item.current_period_start);
  const end = Number(item.current_period_end);
  const recurring = isObj(price.recurring) ? price.recurring : {};
  const quantity =
    recurring.usage_type === "metered"
      ? meteredQuantity(state, String(recurring.meter), String(sub.customer), start, end)
      : Number(item.quantity ?? 1);
  const amount = roundCents(priceAmount(price, quantity));
  const product = typeof price.product === "string" ? state.get("product", price.product) : undefined;
  const name = typeof product?.name === "string" ? product.name : String(price.nickname ?? priceId);
  return {
    id: newId("il_tmp", 14),
    object: "line_item",
    amount,
    currency,
    description: `${quantity.toLocaleString("en-US")} × ${name}`,
    discount_amounts: [],
    discountable: true,
    discounts: [],
    invoice: null,
    livemode: false,
    metadata: {},
    parent: {
      type: "subscription_item_details",
      invoice_item_details: null,
      subscription_item_details: {
        invoice_item: null,
        proration: false,
        proration_details: { credited_items: null },
        subscription: sub.id,
        subscription_item: item.id,
      },
    },
    period: { end, start },
    pretax_credit_amounts: [],
    pricing: {
      type: "price_details",
      price_details: { price: priceId, product: price.product ?? null },
      unit_amount_decimal: price.billing_scheme === "tiered" ? null : (price.unit_amount_decimal ?? null),
    },
    quantity,
    subscription: sub.id,
    subtotal: amount,
    taxes: [],
  };
}

function createPreview(ctx: Ctx): Obj {
  const p = ctx.params;
  rejectUnknown(p, ["customer", "subscription"]);
  const subscriptionId = optStr(p, "subscription");
  const customer = optStr(p, "customer");
  if (!subscriptionId) {
    if (!customer) throw missingParam("customer");
    // Without a subscription Stripe previews pending invoice items, which the emulator never has.
    throw invalid(`Nothing to invoice for customer`, undefined, "invoice_upcoming_none");
  }
  const sub = ctx.state.find("subscription", subscriptionId, "subscription", "subscription", 400);
  const owner = isObj(sub.customer) ? String(sub.customer.id) : String(sub.customer);
  if (customer !== undefined && customer !== owner) {
    throw invalid(
      `The subscription ${subscriptionId} does not belong to customer ${customer}.`,
      "subscription",
    );
  }
  if (sub.status === "canceled" || sub.status === "incomplete_expired") {
    throw invalid(
      `No upcoming invoices for a ${String(sub.status)} subscription.`,
      "subscription",
      "invoice_upcoming_none",
    );
  }
  const currency = typeof sub.currency === "string" ? sub.currency : "usd";
  const items = isObj(sub.items) && Array.isArray(sub.items.data) ? (sub.items.data as Obj[]) : [];
  const lines = items.map((item) => previewLine(ctx.state, { ...sub, customer: owner }, item, currency));
  const total = lines.reduce((sum, l) => sum + Number(l.amount), 0);
  const periodStart = Math.min(...lines.map((l) => Number((l.period as Obj).start)));
  const periodEnd = Math.max(...lines.map((l) => Number((l.period as Obj).end)));
  const now = ctx.state.now();
  return {
    // Stripe's preview has no id of its own.
    object: "invoice",
    account_country: "US",
    amount_due: total,
    amount_paid: 0,
    amount_remaining: total,
    billing_reason: "upcoming",
    collection_method: "charge_automatically",
    created: now,
    currency,
    customer: owner,
    discounts: [],
    lines: {
      object: "list",
      data: lines,
      has_more: false,
      total_count: lines.length,
      url: "/v1/invoices/upcoming/lines",
    },
    livemode: false,
    metadata: {},
    parent: {
      type: "subscription_details",
      quote_details: null,
      subscription_details: { metadata: {}, subscription: subscriptionId },
    },
    period_end: lines.length > 0 ? periodEnd : now,
    period_start: lines.length > 0 ? periodStart : now,
    status: "draft",
    subtotal: total,
    subtotal_excluding_tax: total,
    total,
    total_excluding_tax: total,
    total_discount_amounts: [],
    total_taxes: [],
  };
}

export const invoicePreviewRoutes: Route[] = [
  { method: "POST", template: "/v1/invoices/create_preview", handler: createPreview },
];
