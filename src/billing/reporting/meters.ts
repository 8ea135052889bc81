import type Stripe from "stripe";
import type { StripeClient } from "./stripe-client.js";

type Billing = Pick<StripeClient, "billing">;

/**
 * The active meter for an event name, or undefined. Stripe keeps event names unique among active
 * meters (creating or reactivating a second one is refused), so the first match is the only one:
 * stop paging there.
 */
export async function findMeter(
  stripe: Billing,
  eventName: string,
): Promise<Stripe.Billing.Meter | undefined> {
  for await (const meter of stripe.billing.meters.list({ status: "active", limit: 100 })) {
    if (meter.event_name === eventName) return meter;
  }
  return undefined;
}

/** The active meter for an event name, or an error that says to run stripe:setup. */
export async function requireMeter(stripe: Billing, eventName: string): Promise<Stripe.Billing.Meter> {
  const meter = await findMeter(stripe, eventName);
  if (meter) return meter;
  throw new Error(
    `Stripe has no active meter for event name "${eventName}": run \`npm run cli -- stripe:setup\``,
  );
}

/** Stripe's total for one customer on a meter over [start, end), in Unix seconds aligned to the minute. */
export async function meterTotal(
  stripe: Billing,
  meterId: string,
  window: { customer: string; start: number; end: number },
): Promise<number> {
  let total = 0;
  for await (const summary of stripe.billing.meters.listEventSummaries(meterId, {
    customer: window.customer,
    start_time: window.start,
    end_time: window.end,
    limit: 100,
  })) {
    total += summary.aggregated_value;
  }
  return total;
}
