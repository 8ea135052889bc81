import type { Knex } from "knex";
import type { Db } from "../../platform/db.js";

/**
 * SQL for the subscription period that holds the instant `at` for `customer` (both SQL
 * expressions), as columns `period_start, period_end`; no row when none does (the calendar month
 * applies). Periods may overlap after a billing-cycle anchor reset: the latest start wins, and a
 * later period's start ends the earlier one, as it does on Stripe's invoices.
 */
export function periodContainingSql(customer: string, at: string): string {
  return `SELECT p.period_start,
                 least(p.period_end, (SELECT min(q.period_start) FROM billing_periods q
                                      WHERE q.customer_id = ${customer} AND q.period_start > ${at})) AS period_end
          FROM billing_periods p
          WHERE p.customer_id = ${customer} AND p.period_start <= ${at} AND p.period_end > ${at}
          ORDER BY p.period_start DESC
          LIMIT 1`;
}

/**
 * Keeps a subscription period in the history, whatever the order events arrive in: a late event
 * still adds its period (the history is a set of facts), but moves an existing period's end only
 * when it is newer than the event that last did. Call it in the subscription event's transaction.
 */
export async function recordPeriod(
  trx: Db | Knex.Transaction,
  period: { subscriptionId: string; stripeCustomerId: string; start: Date; end: Date; created: number },
): Promise<void> {
  if (period.end <= period.start) return;
  await trx.raw(
    `INSERT INTO billing_periods (subscription_id, customer_id, period_start, period_end, last_event_created)
     SELECT :subscriptionId, c.id, :start, :end, :created FROM customers c WHERE c.stripe_customer_id = :stripeCustomerId
     ON CONFLICT (subscription_id, period_start) DO UPDATE
       SET customer_id = excluded.customer_id, period_end = excluded.period_end,
           last_event_created = excluded.last_event_created, updated_at = now()
       WHERE billing_periods.last_event_created < excluded.last_event_created`,
    { ...period },
  );
}

/** For each instant, the end of the subscription period holding it (null: no subscription period). */
export async function periodEndsAt(
  db: Db,
  customerId: string,
  ats: readonly Date[],
): Promise<Array<Date | null>> {
  if (ats.length === 0) return [];
  const { rows } = await db.raw<{ rows: Array<{ period_end: Date | null }> }>(
    `SELECT p.period_end
     FROM unnest(CAST(:ats AS timestamptz[])) WITH ORDINALITY AS t(at, i)
     LEFT JOIN LATERAL (${periodContainingSql(":customer", "t.at")}) p ON true
     ORDER BY t.i`,
    { ats: ats.map((at) => at.toISOString()), customer: customerId },
  );
  return rows.map((r) => r.period_end);
}
