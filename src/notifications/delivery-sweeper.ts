import type { Db } from "../platform/db.js";
import type { Logger } from "../platform/logger.js";
import type { Queues } from "../queues/queues.js";
import { enqueueDeliveries } from "./deliveries.js";

type Deps = { db: Db; logger: Logger; queues: Pick<Queues, "webhookDelivery"> };

/**
 * Re-enqueues pending deliveries whose job is missing (a crash between the publish's commit and
 * its enqueue, a Redis down at publish time or one that lost data), and marks failed the pending
 * deliveries whose job already failed for good without saying so. Postgres is the truth, Redis
 * the fast path. Deliveries touched in the last `graceMs` are left to their job.
 */
export async function sweepPendingDeliveries(
  deps: Deps,
  { graceMs = 60_000 }: { graceMs?: number } = {},
): Promise<{ requeued: string[]; markedFailed: string[] }> {
  const queue = deps.queues.webhookDelivery;
  const requeued: string[] = [];
  const markedFailed: string[] = [];
  let after = "";
  for (;;) {
    const ids: string[] = await deps
      .db("webhook_deliveries")
      .where({ status: "pending" })
      .where("updated_at", "<", new Date(Date.now() - graceMs))
      .where("id", ">", after)
      .orderBy("id")
      .limit(500)
      .pluck("id");
    if (ids.length === 0) break;
    after = ids[ids.length - 1]!;
    const states = await Promise.all(ids.map((id) => queue.getJobState(id)));
    const missing = ids.filter((_, i) => states[i] === "unknown");
    const failed = ids.filter((_, i) => states[i] === "failed");
    await enqueueDeliveries(queue, missing);
    if (failed.length > 0) {
      await deps
        .db("webhook_deliveries")
        .whereIn("id", failed)
        .where({ status: "pending" })
        .update({ status: "failed", updated_at: deps.db.fn.now() });
    }
    requeued.push(...missing);
    markedFailed.push(...failed);
  }
  if (requeued.length > 0)
    deps.logger.warn(
      { deliveries: requeued.length },
      "sweeper re-enqueued webhook deliveries whose job was missing",
    );
  if (markedFailed.length > 0)
    deps.logger.error(
      { deliveries: markedFailed },
      "sweeper marked failed the webhook deliveries whose job failed",
    );
  return { requeued, markedFailed };
}
