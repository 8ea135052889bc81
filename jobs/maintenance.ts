import type { Db } from "../src/platform/db.js";
import type { Logger } from "../src/platform/logger.js";
import type { Job } from "bullmq";
import { purgeExpiredChats } from "../src/chat/requests.js";
import { sweepPendingDeliveries } from "../src/notifications/delivery-sweeper.js";

type Deps = { db: Db; logger: Logger } & Parameters<typeof sweepPendingDeliveries>[0];

/**
 * The `maintenance` queue's scheduled ticks: "purge-chats" drops chat claims and outcomes past their
 * promise; "sweep-webhooks" re-enqueues webhook deliveries whose job Redis lost.
 */
export function createMaintenanceProcessor(deps: Deps) {
  return async (_data: unknown, job: Pick<Job, "name">) => {
    if (job.name === "sweep-webhooks") {
      const swept = await sweepPendingDeliveries(deps);
      return { requeued: swept.requeued.length, markedFailed: swept.markedFailed.length };
    }
    const purged = await purgeExpiredChats(deps.db);
    if (purged > 0) deps.logger.info({ purged }, "expired chat claims and outcomes purged");
    return { purged };
  };
}
