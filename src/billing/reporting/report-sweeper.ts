import type { Db } from "../../platform/db.js";
import type { Logger } from "../../platform/logger.js";
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
  const requeued: number[] = [];
  const markedFailed: number[] = [];
  let after = 0;
  for (;;) {
    const ids: number[] = await deps
      .db("usage_reports")
      .where({ status: "pending" })
      .where("updated_at", "<", new Date(Date.now() - graceMs))
      .where("id", ">", after)
      .orderBy("id")
      .limit(500)
      .pluck("id");
    if (ids.length === 0) break;
    after = ids[ids.length - 1]!;
    const states = await Promise.all(ids.map((id) => deps.queues.stripeReport.getJobState(reportJobId(id))));
    const missing = ids.filter((_, i) => states[i] === "unknown");
    const failed = ids.filter((_, i) => states[i] === "failed");
    await enqueueReports(deps.queues.stripeReport, missing);
    if (failed.length > 0) {
      await deps
        .db("usage_reports")
        .whereIn("id", failed)
        .where({ status: "pending" })
        .update({ status: "failed", updated_at: deps.db.fn.now() });
    }
    requeued.push(...missing);
    markedFailed.push(...failed);
  }
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
