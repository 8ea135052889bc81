import type { Db } from "../../platform/db.js";
import { reportJobId, type Queues } from "../../queues/queues.js";
import { redrive, type RedriveOutcome } from "../../queues/redrive.js";

export type ReportRetryOutcome = RedriveOutcome | "already-sent" | "not-found";

/**
 * Puts a report back to work through the one redrive (src/queues/redrive.ts): a sent report is left
 * alone, any other goes back to `pending` and its job is redriven with its full attempts. Stripe's
 * identifier dedupe stays the last guard against a double count.
 */
export async function retryReport(
  db: Db,
  queue: Queues["stripeReport"],
  id: number,
): Promise<ReportRetryOutcome> {
  const report = await db("usage_reports").where({ id }).first("status");
  if (!report) return "not-found";
  if (report.status === "sent") return "already-sent";
  await db("usage_reports")
    .where({ id })
    .whereNot({ status: "sent" })
    .update({ status: "pending", updated_at: db.fn.now() });
  return redrive(db, { queue, jobId: reportJobId(id), name: "report", data: { reportId: id } });
}

/** Retries every failed report; returns each report's outcome. */
export async function retryFailedReports(
  db: Db,
  queue: Queues["stripeReport"],
): Promise<Array<{ id: number; outcome: ReportRetryOutcome }>> {
  const ids: number[] = await db("usage_reports").where({ status: "failed" }).orderBy("id").pluck("id");
  const results: Array<{ id: number; outcome: ReportRetryOutcome }> = [];
  for (const id of ids) results.push({ id, outcome: await retryReport(db, queue, id) });
  return results;
}
