import Stripe from "stripe";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  startStripeEmulator,
  subscriptionObject,
  type StripeEmulator,
} from "../src/local/stripe-emulator.js";

// The customer portal previews the next invoice with `invoices.createPreview`: the emulator must
// answer the official SDK with an Invoice rated from the meter events it holds for the period.
let emu: StripeEmulator;
let stripe: Stripe;

beforeAll(async () => {
  emu = await startStripeEmulator();
  stripe = new Stripe("sk_test_preview", {
    host: "127.0.0.1",
    port: emu.port,
    protocol: "http",
    maxNetworkRetries: 0,
  });
});
afterAll(async () => {
  await emu.close();
});

const DAY = 86_400;
const now = () => Math.floor(Date.now() / 1000);

/** A meter on its own event name, a graduated tiered usage price on it and a licensed base price. */
async function catalog(eventName: string) {
  const meter = await stripe.billing.meters.create({
    display_name: "tokens",
    event_name: eventName,
    default_aggregation: { formula: "sum" },
  });
  const product = await stripe.products.create({ name: "meterline tokens" });
  const recurring = { interval: "month" as const, usage_type: "metered" as const, meter: meter.id };
  const tiered = await stripe.prices.create({
    currency: "usd",
    product: product.id,
    recurring,
    billing_scheme: "tiered",
    tiers_mode: "graduated",
    tiers: [
      { up_to: 1000, unit_amount: 0 },
      { up_to: "inf", unit_amount_decimal: Stripe.Decimal.from("0.02") },
    ],
  });
  const perUnit = await stripe.prices.create({
    currency: "usd",
    product: product.id,
    recurring,
    unit_amount_decimal: Stripe.Decimal.from("0.0025"),
  });
  const base = await stripe.prices.create({
    currency: "usd",
    product_data: { name: "Pro base fee" },
    recurring: { interval: "month", usage_type: "licensed" },
    unit_amount: 500,
  });
  return { tiered, perUnit, base };
}

function subscribe(customer: string, items: Array<{ price: string; quantity?: number }>, status = "active") {
  const sub = subscriptionObject({
    customer,
    status,
    priceId: "",
    items,
    periodStart: now() - 3 * DAY,
    periodEnd: now() + 27 * DAY,
  });
  emu.putObject(sub);
  return String(sub.id);
}

async function meter(eventName: string, customer: string, value: number, timestamp = now()) {
  await stripe.billing.meterEvents.create({
    event_name: eventName,
    payload: { stripe_customer_id: customer, value: String(value) },
    timestamp,
  });
}

describe("POST /v1/invoices/create_preview", () => {
  it("rates this period's meter events by the item's tiers and adds the licensed base fee", async () => {
    const prices = await catalog("tokens_preview_tiered");
    const { id: customer } = emu.createCustomer();
    const subscription = subscribe(customer, [
      { price: prices.base.id, quantity: 1 },
      { price: prices.tiered.id },
    ]);
    await meter("tokens_preview_tiered", customer, 1500);
    await meter("tokens_preview_tiered", customer, 700);
    // Before the period: not on this invoice.
    await meter("tokens_preview_tiered", customer, 1000, now() - 4 * DAY);

    const preview = await stripe.invoices.createPreview({ customer, subscription });
    // (2,200 − 1,000 free) × 0.02¢ = 24¢, plus the 500¢ base fee.
    expect(preview).toMatchObject({ object: "invoice", currency: "usd", subtotal: 524, total: 524 });
    expect(preview.lines.data.map((l) => [l.amount, l.quantity, l.pricing?.price_details?.price])).toEqual([
      [500, 1, prices.base.id],
      [24, 2200, prices.tiered.id],
    ]);
    expect(preview.lines.data[1]!.description).toBe("2,200 × meterline tokens");
    expect(preview.period_end - preview.period_start).toBe(30 * DAY);
    expect(preview.lines.data[1]!.period).toEqual({ start: preview.period_start, end: preview.period_end });
  });

  it("rounds a per-unit line to the nearest cent once", async () => {
    const prices = await catalog("tokens_preview_unit");
    const { id: customer } = emu.createCustomer();
    const subscription = subscribe(customer, [{ price: prices.perUnit.id }]);
    await meter("tokens_preview_unit", customer, 2300);
    const preview = await stripe.invoices.createPreview({ customer, subscription });
    // 2,300 × 0.0025¢ = 5.75¢ → 6¢.
    expect(preview.total).toBe(6);
    expect(preview.lines.data[0]).toMatchObject({ amount: 6, quantity: 2300 });
  });

  it("refuses another customer's subscription, a canceled one, and a customer with nothing to invoice", async () => {
    const prices = await catalog("tokens_preview_refused");
    const { id: owner } = emu.createCustomer();
    const { id: other } = emu.createCustomer();
    const subscription = subscribe(owner, [{ price: prices.perUnit.id }]);
    const canceled = subscribe(owner, [{ price: prices.perUnit.id }], "canceled");
    for (const params of [
      { customer: other, subscription },
      { customer: owner, subscription: canceled },
      { customer: owner },
      { customer: owner, subscription: "sub_missing" },
    ]) {
      await expect(stripe.invoices.createPreview(params), JSON.stringify(params)).rejects.toMatchObject({
        type: "StripeInvalidRequestError",
        statusCode: 400,
      });
    }
    expect(emu.calls["POST /v1/invoices/create_preview"]).toBeGreaterThanOrEqual(4);
  });
});
