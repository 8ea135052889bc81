import type { Db } from "../../platform/db.js";

/** A billing period: [start, end). */
export interface Period {
  start: Date;
  end: Date;
  source: "subscription" | "calendar_month";
}

/** The UTC calendar month containing `at`. */
export function calendarMonth(at: Date): Period {
  const start = new Date(Date.UTC(at.getUTCFullYear(), at.getUTCMonth(), 1));
  const end = new Date(Date.UTC(at.getUTCFullYear(), at.getUTCMonth() + 1, 1));
  return { start, end, source: "calendar_month" };
}

/** The UTC calendar month named "YYYY-MM", or undefined when the text is not one. */
export function parseMonth(text: string): Period | undefined {
  const match = /^(\d{4})-(0[1-9]|1[0-2])$/.exec(text);
  if (!match) return undefined;
  return calendarMonth(new Date(Date.UTC(Number(match[1]), Number(match[2]) - 1, 1)));
}

/**
 * A customer's period at a time: its Stripe subscription's current period when one covers `at`,
 * else the calendar month in UTC. Canceled subscriptions still define the period they covered.
 */
export async function billingPeriod(db: Db, customerId: string, at: Date = new Date()): Promise<Period> {
  const row = await db("subscriptions")
    .where({ customer_id: customerId })
    .where("current_period_start", "<=", at)
    .where("current_period_end", ">", at)
    .orderBy("current_period_start", "desc")
    .first("current_period_start", "current_period_end");
  if (!row) return calendarMonth(at);
  return { start: row.current_period_start, end: row.current_period_end, source: "subscription" };
}
