import type { Job } from "bullmq";
import type { Db } from "../src/platform/db.js";
import type { Logger } from "../src/platform/logger.js";
import { purgeExpiredChats } from "../src/chat/requests.js";
import { expireCredits } from "../src/billing/credits/expiry.js";
import type { CreditCounter } from "../src/billing/credits/counter.js";
import { sweepPendingDeliveries } from "../src/notifications/delivery-sweeper.js";
import { sweepAutoTopUps, type AutoTopUpDeps } from "../src/billing/credits/top-ups.js";

type Deps = { db: Db; logger: Logger; creditCounter: Pick<CreditCounter, "adjust"> } & Parameters<
  typeof sweepPendingDeliveries
>[0] &
  AutoTopUpDeps;

/**
 * The `maintenance` queue's scheduled jobs, by name: "purge-chats" drops chat claims and outcomes
 * past their promise; "expire-credits" writes the expiry entries of credit grants past `expires_at`,
 * then starts the automatic top-ups no usage started (src/billing/credits/top-ups.ts);
 * "sweep-webhooks" re-enqueues webhook deliveries whose job Redis lost.
 */
export function createMaintenanceProcessor(deps: Deps) {
  return async (_data: unknown, job: Pick<Job, "name">) => {
    if (job.name === "expire-credits") {
      const { byCustomer, ...expired } = await expireCredits(deps.db);
      for (const { customerId, micros } of byCustomer) await deps.creditCounter.adjust(customerId, -micros);
      if (expired.grants > 0) deps.logger.info(expired, "credit grants expired");
      const topUps = await sweepAutoTopUps(deps);
      return { ...expired, autoTopUps: topUps };
    }
    if (job.name === "sweep-webhooks") {
      const swept = await sweepPendingDeliveries(deps);
      return { requeued: swept.requeued.length, markedFailed: swept.markedFailed.length };
    }
    const purged = await purgeExpiredChats(deps.db);
    if (purged > 0) deps.logger.info({ purged }, "expired chat claims and outcomes purged");
    return { purged };
  };
}
