import Stripe from "stripe";
import type { Config } from "../../config.js";
import type { Db } from "../../platform/db.js";
import { canonicalJson, sha256 } from "../../platform/ids.js";
import { listPlans, type Plan } from "../pricing/plans.js";
import { findMeter } from "./meters.js";
import type { StripeClient } from "./stripe-client.js";

export interface StripeSetup {
  meter: { id: string; eventName: string; created: boolean };
  plans: Array<{
    planId: string;
    productId: string;
    prices: Record<string, { id: string; lookupKey: string; created: boolean }>;
  }>;
}

type Deps = { db: Db; config: Config; stripe: StripeClient };

/** `n / 10^places` as an exact decimal string ("2000", 7 → "0.0002"); money never goes through floats. */
export function shiftDecimal(n: number, places: number): string {
  const digits = BigInt(n)
    .toString()
    .padStart(places + 1, "0");
  const whole = digits.slice(0, digits.length - places);
  const fraction = digits.slice(digits.length - places).replace(/0+$/, "");
  return fraction ? `${whole}.${fraction}` : whole;
}

/** The Stripe prices a plan needs: a metered usage price, plus a licensed base fee when it has one. */
export function planPriceParams(plan: Plan, meterId: string): Record<string, Stripe.PriceCreateParams> {
  // 1 cent = 10,000 micro-dollars; the overage is per 1K tokens, the meter counts single tokens.
  const perToken = Stripe.Decimal.from(shiftDecimal(plan.overagePer1kMicros, 7));
  const common = { currency: "usd", lookup_key: `meterline_${plan.id}_usage` };
  const recurring = { interval: "month" as const, usage_type: "metered" as const, meter: meterId };
  const usage: Stripe.PriceCreateParams =
    plan.includedTokens > 0
      ? {
          ...common,
          recurring,
          billing_scheme: "tiered",
          tiers_mode: "graduated",
          tiers: [
            { up_to: plan.includedTokens, unit_amount: 0 },
            { up_to: "inf", unit_amount_decimal: perToken },
          ],
        }
      : { ...common, recurring, unit_amount_decimal: perToken };
  const prices: Record<string, Stripe.PriceCreateParams> = { usage };
  if (plan.baseFeeMicros > 0) {
    prices.base = {
      currency: "usd",
      lookup_key: `meterline_${plan.id}_base`,
      recurring: { interval: "month", usage_type: "licensed" },
      unit_amount_decimal: Stripe.Decimal.from(shiftDecimal(plan.baseFeeMicros, 4)),
    };
  }
  return prices;
}

/**
 * Creates, or finds again, the meter, one product per plan and the plan's prices, and stores the
 * price ids on the plan. Idempotent: products have fixed ids, prices are found by lookup key and
 * replaced (the lookup key moves to a new price) only when the plan's terms changed.
 */
export async function setupStripe(deps: Deps): Promise<StripeSetup> {
  const { stripe } = deps;
  const eventName = deps.config.stripe.meterEventName;
  let meter = await findMeter(stripe, eventName);
  const meterCreated = meter === undefined;
  meter ??= await stripe.billing.meters.create({
    display_name: "meterline tokens",
    event_name: eventName,
    default_aggregation: { formula: "sum" },
    customer_mapping: { event_payload_key: "stripe_customer_id", type: "by_id" },
    value_settings: { event_payload_key: "value" },
  });

  const plans: StripeSetup["plans"] = [];
  for (const plan of await listPlans(deps.db)) {
    const productId = await ensureProduct(stripe, plan);
    const prices: StripeSetup["plans"][number]["prices"] = {};
    for (const [role, params] of Object.entries(planPriceParams(plan, meter.id))) {
      prices[role] = await ensurePrice(stripe, { ...params, product: productId });
    }
    await deps
      .db("plans")
      .where({ id: plan.id })
      .update({
        stripe_price_ids: JSON.stringify(
          Object.fromEntries(Object.entries(prices).map(([k, v]) => [k, v.id])),
        ),
        updated_at: deps.db.fn.now(),
      });
    plans.push({ planId: plan.id, productId, prices });
  }
  return { meter: { id: meter.id, eventName, created: meterCreated }, plans };
}

async function ensureProduct(stripe: StripeClient, plan: Plan): Promise<string> {
  const id = `meterline_${plan.id}`;
  try {
    return (await stripe.products.retrieve(id)).id;
  } catch (err) {
    if (!(err instanceof Stripe.errors.StripeError) || err.statusCode !== 404) throw err;
  }
  const product = await stripe.products.create({
    id,
    name: `meterline ${plan.name}`,
    metadata: { meterline_plan: plan.id },
  });
  return product.id;
}

async function ensurePrice(stripe: StripeClient, params: Stripe.PriceCreateParams) {
  const lookupKey = params.lookup_key!;
  // Through JSON first so Decimal amounts take part as their strings.
  const fingerprint = sha256(canonicalJson(JSON.parse(JSON.stringify(params)))).slice(0, 32);
  const existing = (await stripe.prices.list({ lookup_keys: [lookupKey], active: true, limit: 1 })).data[0];
  if (existing && existing.metadata?.meterline_fingerprint === fingerprint) {
    return { id: existing.id, lookupKey, created: false };
  }
  const price = await stripe.prices.create({
    ...params,
    metadata: { meterline_fingerprint: fingerprint },
    transfer_lookup_key: existing !== undefined,
  });
  return { id: price.id, lookupKey, created: true };
}
