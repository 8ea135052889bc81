import type { Config } from "../../config.js";
import type { Db } from "../../platform/db.js";
import type { Logger } from "../../platform/logger.js";
import type { StripeClient } from "./stripe-client.js";
import { exactSum } from "../ledger/usage-bounds.js";
import { meterTotal, requireMeter } from "./meters.js";

export interface Reconciliation {
  day: string;
  customerId: string;
  stripeCustomerId: string;
  eventName: string;
  sentValue: number;
  stripeValue: number;
  /** stripeValue - sentValue: negative means Stripe counted less than meterline sent. */
  drift: number;
}

type Deps = {
  db: Db;
  config: Config;
  logger: Logger;
  stripe: Pick<StripeClient, "billing">;
};

/** The UTC day before `now`, as YYYY-MM-DD: the last complete day. */
export function previousUtcDay(now = new Date()): string {
  return new Date(now.getTime() - 86_400_000).toISOString().slice(0, 10);
}

/**
 * Compares, for one UTC day, what meterline marked sent per customer (by the meter event timestamp
 * it sent) with Stripe's meter event summaries for the same window; records and returns the drift.
 * Summaries are eventually consistent: reconcile a day once it is over.
 */
export async function reconcileDay(deps: Deps, day: string): Promise<Reconciliation[]> {
  const start = new Date(`${day}T00:00:00Z`);
  if (Number.isNaN(start.getTime()) || !/^\d{4}-\d{2}-\d{2}$/.test(day)) {
    throw new Error(`invalid day "${day}": expected YYYY-MM-DD`);
  }
  const end = new Date(start.getTime() + 86_400_000);
  const eventName = deps.config.stripe.meterEventName;
  const meter = await requireMeter(deps.stripe, eventName);
  const sent = (await deps
    .db("usage_reports")
    .where({ status: "sent", event_name: eventName })
    .where("event_at", ">=", start)
    .where("event_at", "<", end)
    .groupBy("customer_id", "stripe_customer_id")
    .orderBy("customer_id")
    .select("customer_id", "stripe_customer_id")
    .sum({ sent_value: "value" })) as Array<{
    customer_id: string;
    stripe_customer_id: string;
    sent_value: string;
  }>;

  const results: Reconciliation[] = [];
  for (const row of sent) {
    const stripeValue = await meterTotal(deps.stripe, meter.id, {
      customer: row.stripe_customer_id,
      start: Math.floor(start.getTime() / 1000),
      end: Math.floor(end.getTime() / 1000),
    });
    const sentValue = exactSum(row.sent_value, `the value sent for ${row.customer_id} on ${day}`);
    results.push({
      day,
      customerId: row.customer_id,
      stripeCustomerId: row.stripe_customer_id,
      eventName,
      sentValue,
      stripeValue,
      drift: stripeValue - sentValue,
    });
  }
  if (results.length > 0) {
    await deps
      .db("usage_reconciliations")
      .insert(
        results.map((r) => ({
          day: r.day,
          customer_id: r.customerId,
          stripe_customer_id: r.stripeCustomerId,
          event_name: r.eventName,
          sent_value: r.sentValue,
          stripe_value: r.stripeValue,
          drift: r.drift,
        })),
      )
      .onConflict(["day", "customer_id", "stripe_customer_id", "event_name"])
      .merge(["sent_value", "stripe_value", "drift", "checked_at"]);
  }
  for (const r of results.filter((x) => x.drift !== 0)) {
    deps.logger.error(r, "usage drift: Stripe's meter total differs from what meterline sent");
  }
  deps.logger.info(
    { day, customers: results.length, drifting: results.filter((r) => r.drift !== 0).length },
    "reconciliation done",
  );
  return results;
}
