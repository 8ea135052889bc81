import type { Db } from "../../platform/db.js";
import { QUEUE, reportJobId, type Queues } from "../../queues/queues.js";
import { enqueueReports } from "./usage-flush.js";

export type ReportRetryOutcome = "retried" | "re-added" | "already-pending" | "already-sent" | "not-found";

/**
 * Puts a report back to work. Safe to repeat and to race with Bull Board's Retry button: a sent
 * report is left alone, a job that is waiting or running is not duplicated, a failed job is retried
 * under its own id, and a job BullMQ no longer holds is re-added. Stripe's identifier dedupe stays
 * the last guard against a double count.
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
  const job = await queue.getJob(reportJobId(id));
  let outcome: ReportRetryOutcome;
  if (!job) {
    await enqueueReports(queue, [id]);
    outcome = "re-added";
  } else if ((await job.getState()) === "failed") {
    // A fresh run gets its full retry budget: the cause (Stripe down, a bad key) was fixed.
    await job.retry("failed", { resetAttemptsMade: true, resetAttemptsStarted: true });
    outcome = "retried";
  } else {
    outcome = "already-pending";
  }
  if (outcome !== "already-pending") {
    await db("dead_letters")
      .where({ queue: QUEUE.stripeReport, job_id: reportJobId(id) })
      .whereNull("resolved_at")
      .update({ redriven_at: db.fn.now(), redrive_count: db.raw("redrive_count + 1") });
  }
  return outcome;
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
