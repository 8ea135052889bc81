import type { Db } from "../../platform/db.js";
import type { Logger } from "../../platform/logger.js";
import { sweepLostJobs } from "../../queues/lost-jobs.js";
import { reportBatchJobId, reportJobId, type Queues } from "../../queues/queues.js";
import { enqueueReports } from "./report-batches.js";

type Deps = { db: Db; logger: Logger; queues: { stripeReport: Queues["stripeReport"] } };

/**
 * Re-enqueues pending reports whose job is missing (a crash between the flush's commit and its
 * enqueue, or a Redis that lost data), and marks failed the pending reports whose job already
 * failed for good without saying so. Reports touched in the last `graceMs` are left to their job.
 * A report a v2 batch carries is alive while its batch job or a job of its own is; when both are
 * gone it is re-enqueued in its batch, under the batch's job id, with the batch's other lost reports.
 */
export async function sweepPendingReports(
  deps: Deps,
  { graceMs = 60_000 }: { graceMs?: number } = {},
): Promise<{ requeued: number[]; markedFailed: number[] }> {
  const { db } = deps;
  const batchOf = new Map<number, number>();
  const { requeued, markedFailed } = await sweepLostJobs<number>({
    page: async (after) => {
      const rows: Array<{ id: string | number; batch_id: string | number | null }> = await db("usage_reports")
        .where({ status: "pending" })
        .where("updated_at", "<", new Date(Date.now() - graceMs))
        .where("id", ">", after ?? 0)
        .orderBy("id")
        .limit(500)
        .select("id", "batch_id");
      batchOf.clear();
      for (const r of rows) if (r.batch_id !== null) batchOf.set(Number(r.id), Number(r.batch_id));
      return rows.map((r) => Number(r.id));
    },
    jobIds: (id) => {
      const batchId = batchOf.get(id);
      return batchId === undefined ? [reportJobId(id)] : [reportBatchJobId(batchId), reportJobId(id)];
    },
    queue: deps.queues.stripeReport,
    enqueue: (ids) =>
      enqueueReports(
        deps.queues.stripeReport,
        ids.map((id) => ({ id, batchId: batchOf.get(id) })),
      ),
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
