import type { Db } from "../platform/db.js";
import type { Logger } from "../platform/logger.js";
import { sweepLostJobs } from "../queues/lost-jobs.js";
import type { Queues } from "../queues/queues.js";
import { enqueueDeliveries } from "./deliveries.js";

type Deps = { db: Db; logger: Logger; queues: Pick<Queues, "webhookDelivery"> };

/**
 * Re-enqueues pending deliveries whose job is missing (a crash between the publish's commit and
 * its enqueue, a Redis down at publish time or one that lost data), and marks failed the pending
 * deliveries whose job already failed for good without saying so. Deliveries touched in the last
 * `graceMs` are left to their job. Scheduled on the maintenance queue ("sweep-webhooks").
 */
export async function sweepPendingDeliveries(
  deps: Deps,
  { graceMs = 60_000 }: { graceMs?: number } = {},
): Promise<{ requeued: string[]; markedFailed: string[] }> {
  const { db } = deps;
  const queue = deps.queues.webhookDelivery;
  const swept = await sweepLostJobs<string>({
    page: (after) =>
      db("webhook_deliveries")
        .where({ status: "pending" })
        .where("updated_at", "<", new Date(Date.now() - graceMs))
        .where("id", ">", after ?? "")
        .orderBy("id")
        .limit(500)
        .pluck("id"),
    jobIds: (id) => [id],
    queue,
    enqueue: (ids) => enqueueDeliveries(queue, ids),
    markFailed: async (ids) => {
      await db("webhook_deliveries")
        .whereIn("id", ids)
        .where({ status: "pending" })
        .update({ status: "failed", updated_at: db.fn.now() });
    },
  });
  if (swept.requeued.length > 0)
    deps.logger.warn(
      { deliveries: swept.requeued.length },
      "sweeper re-enqueued webhook deliveries whose job was missing",
    );
  if (swept.markedFailed.length > 0)
    deps.logger.error(
      { deliveries: swept.markedFailed },
      "sweeper marked failed the webhook deliveries whose job failed for good",
    );
  return swept;
}
