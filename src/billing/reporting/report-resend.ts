import type { Config } from "../../config.js";
import type { Db } from "../../platform/db.js";
import { meterTotal, requireMeter } from "./meters.js";
import type { StripeClient } from "./stripe-client.js";
import type { UsageReport } from "./usage-reports.js";
import { exactSum } from "../ledger/usage-bounds.js";

type Deps = { db: Db; config: Config; stripe: Pick<StripeClient, "billing"> };

/** What to do with a report about to be sent; "ambiguous" carries what an operator must check. */
export type BeforeSend =
  | { action: "send" }
  | { action: "counted" }
  | { action: "ambiguous"; message: string; figures: Record<string, unknown> };

/**
 * Call with the meter lock held, right before a report's meter-event call. Records the report's
 * first attempt (once, before any call could reach Stripe). Stripe dedupes the identifier and the
 * Idempotency-Key for about 24 hours from the event's arrival, which is never before that first
 * attempt; so once the first attempt is older than `resendCheckAfterMs`, an earlier attempt may be
 * counted without Stripe recognising a resend. Then Stripe's meter summary for the customer over
 * the minute of the report's timestamp is compared with the reports marked sent there:
 * - Stripe counts exactly the sent reports → the report never arrived: send it;
 * - Stripe counts exactly this report more, and no other unsettled report could be it → mark it
 *   sent without a resend;
 * - anything else (an unsettled neighbour, a cancel, a summary that lags) → an operator decides.
 */
export async function checkBeforeSend(
  deps: Deps,
  report: UsageReport,
  stripeCustomerId: string,
): Promise<BeforeSend> {
  const { db } = deps;
  const ages = await markFirstAttempts(db, [report.id]);
  if ((ages.get(report.id) ?? 0) <= deps.config.reporting.resendCheckAfterMs) return { action: "send" };

  // Summaries take minute-aligned bounds; one minute keeps the reports it covers to a handful.
  const start = Math.floor(report.eventAt.getTime() / 60_000) * 60;
  const end = start + 60;
  const meter = await requireMeter(deps.stripe, report.eventName);
  const stripeValue = await meterTotal(deps.stripe, meter.id, { customer: stripeCustomerId, start, end });
  const [ours] = (await db("usage_reports as r")
    .join("customers as c", "c.id", "r.customer_id")
    .where({ "r.event_name": report.eventName })
    .where("r.event_at", ">=", new Date(start * 1000))
    .where("r.event_at", "<", new Date(end * 1000))
    .select(
      db.raw(
        "coalesce(sum(r.value) FILTER (WHERE r.status = 'sent' AND r.stripe_customer_id = ?), 0) AS sent",
        [stripeCustomerId],
      ),
      // Other reports for this Stripe customer that may have reached Stripe without being marked.
      db.raw(
        `count(*) FILTER (WHERE r.status <> 'sent' AND r.id <> ? AND r.first_attempted_at IS NOT NULL
          AND c.stripe_customer_id = ?) AS unsettled`,
        [report.id, stripeCustomerId],
      ),
    )) as Array<{ sent: string; unsettled: string }>;
  const sentValue = exactSum(ours?.sent, `the value sent for ${stripeCustomerId} that day`);
  const unsettled = Number(ours?.unsettled ?? 0);
  const extra = stripeValue - sentValue;
  if (extra === 0) return { action: "send" };
  if (extra === report.value && unsettled === 0) return { action: "counted" };

  const from = new Date(start * 1000).toISOString();
  const to = new Date(end * 1000).toISOString();
  return {
    action: "ambiguous",
    message:
      `past Stripe's 24-hour identifier window: Stripe counts ${stripeValue} for ${stripeCustomerId} ` +
      `from ${from} to ${to}, sent reports ${sentValue}, this report ${report.value}` +
      (unsettled > 0 ? `, ${unsettled} other unsettled report(s) there` : "") +
      `; check that minute's meter events in Stripe before retrying (a retry resends only if Stripe ` +
      `counts exactly the sent reports)`,
    figures: { stripeValue, sentValue, unsettled, value: report.value, from, to, stripeCustomerId },
  };
}

/**
 * Records the first attempt of each report that has none, before any call could reach Stripe, and
 * returns how long ago each report's first attempt was (ms). A report older than
 * `resendCheckAfterMs` needs `checkBeforeSend`'s look at Stripe's figures before it is sent.
 */
export async function markFirstAttempts(db: Db, ids: readonly number[]): Promise<Map<number, number>> {
  const { rows } = await db.raw<{ rows: Array<{ id: string | number; age_ms: number }> }>(
    `UPDATE usage_reports SET first_attempted_at = coalesce(first_attempted_at, now())
      WHERE id = ANY(?::bigint[])
      RETURNING id, (extract(epoch FROM now() - first_attempted_at) * 1000)::float8 AS age_ms`,
    [[...ids]],
  );
  return new Map(rows.map((r) => [Number(r.id), r.age_ms]));
}
