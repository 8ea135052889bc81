import type { Db } from "../../platform/db.js";
import { REPORT_STATUSES, type ReportStatus } from "./usage-reports.js";

/** How Stripe reporting stands: reports by status, how late the oldest pending one is, and drift. */
export interface ReportingHealth {
  counts: Record<ReportStatus, number>;
  /** When the oldest pending report was created; null when none is pending. */
  oldestPendingAt: Date | null;
  /** Each customer's and meter's latest reconciliation (reconcile.ts), largest drift first. */
  drift: Array<{
    customerId: string;
    eventName: string;
    day: string;
    sentValue: number;
    stripeValue: number;
    drift: number;
  }>;
}

/** Reporting's state from `usage_reports` and `usage_reconciliations`, for the dashboard. */
export async function reportingHealth(db: Db): Promise<ReportingHealth> {
  const [counts, pending, drift] = await Promise.all([
    db("usage_reports").groupBy("status").select("status").count({ n: "*" }),
    db("usage_reports").where({ status: "pending" }).min({ at: "created_at" }).first(),
    db
      .select("*")
      .from(
        db("usage_reconciliations")
          .distinctOn("customer_id", "event_name")
          .orderBy([{ column: "customer_id" }, { column: "event_name" }, { column: "day", order: "desc" }])
          .select(
            "customer_id",
            "event_name",
            db.raw("to_char(day, 'YYYY-MM-DD') AS day"),
            "sent_value",
            "stripe_value",
            "drift",
          )
          .as("latest"),
      )
      .orderByRaw("abs(drift) DESC, customer_id"),
  ]);
  const byStatus = Object.fromEntries(REPORT_STATUSES.map((s) => [s, 0])) as Record<ReportStatus, number>;
  for (const row of counts as Array<{ status: ReportStatus; n: string }>)
    byStatus[row.status] = Number(row.n);
  return {
    counts: byStatus,
    oldestPendingAt: pending?.at ? new Date(pending.at as string) : null,
    drift: (drift as Array<Record<string, unknown>>).map((r) => ({
      customerId: String(r.customer_id),
      eventName: String(r.event_name),
      day: String(r.day),
      sentValue: Number(r.sent_value),
      stripeValue: Number(r.stripe_value),
      drift: Number(r.drift),
    })),
  };
}
