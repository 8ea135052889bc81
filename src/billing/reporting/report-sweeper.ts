import type { Db } from "../../platform/db.js";
import type { Logger } from "../../platform/logger.js";
import { sweepLostJobs } from "../../queues/lost-jobs.js";
import { reportJobId, type Queues } from "../../queues/queues.js";
import { enqueueReports } from "./usage-flush.js";

type Deps = { db: Db; logger: Logger; queues: { stripeReport: Queues["stripeReport"] } };

/**
 * Re-enqueues pending reports whose job is missing (a crash between the flush's commit and its
 * enqueue, or a Redis that lost data), and marks failed the pending reports whose job already
 * failed for good without saying so. Reports touched in the last `graceMs` are left to their job.
 */
export async function sweepPendingReports(
  deps: Deps,
  { graceMs = 60_000 }: { graceMs?: number } = {},
): Promise<{ requeued: number[]; markedFailed: number[] }> {
  const { db } = deps;
  const { requeued, markedFailed } = await sweepLostJobs<number>({
    page: (after) =>
      db("usage_reports")
        .where({ status: "pending" })
        .where("updated_at", "<", new Date(Date.now() - graceMs))
        .where("id", ">", after ?? 0)
        .orderBy("id")
        .limit(500)
        .pluck("id"),
    jobId: reportJobId,
    queue: deps.queues.stripeReport,
    enqueue: (ids) => enqueueReports(deps.queues.stripeReport, ids),
    markFailed: async (ids) => {
      await db("usage_reports")
        .whereIn("id", ids)
        .where({ status: "pending" })
        .update({ status: "failed", updated_at: db.fn.now() });
    },
  });
  if (requeued.length > 0) {
    deps.logger.warn(
      { reports: requeued.length },
      "sweeper re-enqueued pending reports whose job was missing",
    );
  }
  if (markedFailed.length > 0) {
    deps.logger.error(
      { reports: markedFailed },
      "sweeper marked failed the reports whose job failed for good",
    );
  }
  return { requeued, markedFailed };
}
