const DAY_MS = 86_400_000;

/** Stripe takes a meter event whose timestamp lies in the past 35 days or at most 5 minutes ahead. */
export const STRIPE_METER_MAX_AGE_MS = 35 * DAY_MS;
export const STRIPE_METER_MAX_AHEAD_MS = 5 * 60_000;

/**
 * How much younger than Stripe's limit usage must be to be accepted: the time a row may spend
 * between intake and its last send — a flush interval, the `stripe-report` retries (about 15 h
 * with the default 25 attempts capped at 1 h) and room for a short outage. Intake and reporter
 * derive their limits from the same two constants; the reporter sends up to Stripe's own edge.
 */
export const REPORTING_MARGIN_MS = DAY_MS;
// Our clock against Stripe's, plus the time a call takes.
const CLOCK_SKEW_MS = 5 * 60_000;

/** The oldest usage timestamp intake accepts at `now`. */
export function oldestAccepted(now: Date): Date {
  return new Date(now.getTime() - STRIPE_METER_MAX_AGE_MS + REPORTING_MARGIN_MS);
}

/**
 * A period is invoiced (closed to usage) `graceMs` after it ends: Stripe finalizes the invoice
 * about an hour after the period ends, so usage reported later would never be billed. Null: no
 * subscription period, no invoice to miss. One rule for intake and for the reporter.
 */
export function periodClosed(periodEnd: Date | null, now: Date, graceMs: number): boolean {
  return periodEnd !== null && periodEnd.getTime() + graceMs <= now.getTime();
}

export type Unreportable = { reason: "too_old" | "period_closed"; message: string };

/** Why a report can no longer reach Stripe (or an invoice) at `now`, if it cannot. */
export function unreportable(
  report: { eventAt: Date; periodEnd: Date | null },
  now: Date,
  graceMs: number,
): Unreportable | undefined {
  if (report.eventAt.getTime() < now.getTime() - STRIPE_METER_MAX_AGE_MS + CLOCK_SKEW_MS)
    return { reason: "too_old", message: "older than Stripe's 35-day meter event window" };
  if (periodClosed(report.periodEnd, now, graceMs))
    return {
      reason: "period_closed",
      message: `in the billing period that ended at ${report.periodEnd!.toISOString()}, already invoiced`,
    };
  return undefined;
}
