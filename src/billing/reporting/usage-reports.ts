import type { Db } from "../../platform/db.js";
import { sha256 } from "../../platform/ids.js";

export type ReportStatus = "pending" | "sent" | "failed";
export const REPORT_STATUSES: readonly ReportStatus[] = ["pending", "sent", "failed"];

export interface UsageReport {
  id: number;
  customerId: string;
  eventName: string;
  value: number;
  windowStart: Date;
  windowEnd: Date;
  eventAt: Date;
  /** The subscription period the window lies in; null when none covers it (calendar month). */
  periodStart: Date | null;
  periodEnd: Date | null;
  identifier: string;
  status: ReportStatus;
  attempts: number;
  lastError: string | null;
  /** Set when the flush quarantined the report's rows (usage-quarantine.ts): never to be sent. */
  quarantineReason: string | null;
  stripeCustomerId: string | null;
  sentAt: Date | null;
  createdAt: Date;
}

/**
 * The meter event `identifier` of a report — the key Stripe dedupes on — derived here and nowhere
 * else. The report id makes it unique even when several reports share a customer, meter and window
 * (usage committed after its window was flushed); customer and window make it unique across
 * databases that reuse report ids (a reset staging database sharing a Stripe account), so a fresh
 * report is never mistaken for a duplicate of an old one.
 */
export function reportIdentifier(r: {
  reportId: number;
  customerId: string;
  eventName: string;
  windowStart: Date;
}): string {
  const digest = sha256(
    [r.customerId, r.eventName, r.windowStart.toISOString(), String(r.reportId)].join("\u0000"),
  ).slice(0, 32);
  return `mlr_${r.reportId}_${digest}`;
}

/**
 * The Idempotency-Key for sending a report to a Stripe customer. Stable across every retry of that
 * send; it changes only if an operator re-points the customer at another Stripe customer, where
 * Stripe would otherwise refuse the key for its different parameters.
 */
export function reportIdempotencyKey(identifier: string, stripeCustomerId: string): string {
  return `${identifier}-${sha256(stripeCustomerId).slice(0, 12)}`;
}

export function reportFromRow(row: Record<string, unknown>): UsageReport {
  return {
    id: row.id as number,
    customerId: row.customer_id as string,
    eventName: row.event_name as string,
    value: row.value as number,
    windowStart: row.window_start as Date,
    windowEnd: row.window_end as Date,
    eventAt: row.event_at as Date,
    periodStart: (row.period_start as Date | null) ?? null,
    periodEnd: (row.period_end as Date | null) ?? null,
    identifier: row.identifier as string,
    status: row.status as ReportStatus,
    attempts: row.attempts as number,
    lastError: (row.last_error as string | null) ?? null,
    quarantineReason: (row.quarantine_reason as string | null) ?? null,
    stripeCustomerId: (row.stripe_customer_id as string | null) ?? null,
    sentAt: (row.sent_at as Date | null) ?? null,
    createdAt: row.created_at as Date,
  };
}

export async function listReports(
  db: Db,
  filter: { status?: ReportStatus; customerId?: string; limit?: number } = {},
): Promise<UsageReport[]> {
  const query = db("usage_reports")
    .orderBy("id", "desc")
    .limit(filter.limit ?? 100);
  if (filter.status) query.where({ status: filter.status });
  if (filter.customerId) query.where({ customer_id: filter.customerId });
  return (await query).map(reportFromRow);
}

/** A report and its customer's current Stripe id, read at send time. */
export interface ReportForSending {
  report: UsageReport;
  currentStripeCustomerId: string | null;
}

export async function reportForSending(db: Db, id: number): Promise<ReportForSending | undefined> {
  return (await reportsForSending(db, [id]))[0];
}

/** Each of `ids` that exists, in id order. */
export async function reportsForSending(db: Db, ids: readonly number[]): Promise<ReportForSending[]> {
  const rows = await db("usage_reports as r")
    .join("customers as c", "c.id", "r.customer_id")
    .whereIn("r.id", ids)
    .orderBy("r.id")
    .select("r.*", "c.stripe_customer_id as current_stripe_customer_id");
  return rows.map((row: Record<string, unknown>) => ({
    report: reportFromRow(row),
    currentStripeCustomerId: (row.current_stripe_customer_id as string | null) ?? null,
  }));
}

export async function markReportSent(db: Db, id: number, stripeCustomerId: string): Promise<void> {
  await markReportsSent(db, [{ id, stripeCustomerId }]);
}

/** Marks reports sent, each to the Stripe customer it went to, in one statement. */
export async function markReportsSent(
  db: Db,
  sent: ReadonlyArray<{ id: number; stripeCustomerId: string }>,
): Promise<void> {
  if (sent.length === 0) return;
  await db.raw(
    `UPDATE usage_reports r SET status = 'sent', stripe_customer_id = s.stripe_customer_id, sent_at = now(),
       attempts = r.attempts + 1, last_error = NULL, updated_at = now()
     FROM unnest(?::bigint[], ?::text[]) AS s(id, stripe_customer_id)
     WHERE r.id = s.id`,
    [sent.map((s) => s.id), sent.map((s) => s.stripeCustomerId)],
  );
}

/** Records an attempt that did not deliver; `failed` only when no retry will follow. */
export async function recordReportAttempt(
  db: Db,
  id: number,
  error: string,
  status: "pending" | "failed",
): Promise<void> {
  await recordReportAttempts(db, [id], error, status);
}

/** `recordReportAttempt` for every report of a request that failed as a whole. */
export async function recordReportAttempts(
  db: Db,
  ids: readonly number[],
  error: string,
  status: "pending" | "failed",
): Promise<void> {
  if (ids.length === 0) return;
  await db("usage_reports")
    .whereIn("id", ids)
    .whereNot({ status: "sent" })
    .update({ status, attempts: db.raw("attempts + 1"), last_error: error, updated_at: db.fn.now() });
}
