import type { Job } from "bullmq";
import type { Db } from "../src/platform/db.js";
import type { Logger } from "../src/platform/logger.js";
import { purgeExpiredChats } from "../src/chat/requests.js";
import { expireCredits } from "../src/billing/credits/expiry.js";
import type { CreditCounter } from "../src/billing/credits/counter.js";
import { sweepPendingDeliveries } from "../src/notifications/delivery-sweeper.js";
import { sweepAutoTopUps, type AutoTopUpDeps } from "../src/billing/credits/top-ups.js";
import { sweepCreditHolds } from "../src/billing/credits/hold-sweeper.js";
import type { Queues } from "../src/queues/queues.js";
import { ensurePartitions } from "../src/billing/ledger/partitions.js";

// A credit reservation this old is one its chat would have settled long since: chats run in minutes.
const HOLD_GRACE_MS = 15 * 60_000;

type Deps = {
  db: Db;
  logger: Logger;
  creditCounter: CreditCounter;
  queues: Pick<Queues, "chat">;
} & Parameters<typeof sweepPendingDeliveries>[0] &
  AutoTopUpDeps;

/** Whether a chat's job is still to run or running (not finished, not removed). */
export const chatPending =
  (queues: Pick<Queues, "chat">) =>
  async (requestId: string): Promise<boolean> => {
    const chat = await queues.chat.getJob(requestId);
    return chat !== undefined && !chat.finishedOn;
  };

/**
 * The `maintenance` queue's scheduled jobs, by name: "purge-chats" drops chat claims and outcomes
 * past their promise; "expire-credits" writes the expiry entries of credit grants past `expires_at`,
 * then starts the automatic top-ups no usage started (src/billing/credits/top-ups.ts) and gives back
 * credit reservations no chat will settle (src/billing/credits/hold-sweeper.ts);
 * "sweep-webhooks" re-enqueues webhook deliveries whose job Redis lost; "ledger-partitions" makes the
 * ledger's monthly partitions ahead.
 */
export function createMaintenanceProcessor(deps: Deps) {
  return async (_data: unknown, job: Pick<Job, "name">) => {
    if (job.name === "expire-credits") {
      const { byCustomer, ...expired } = await expireCredits(deps.db);
      for (const { customerId, micros } of byCustomer) await deps.creditCounter.adjust(customerId, -micros);
      if (expired.grants > 0) deps.logger.info(expired, "credit grants expired");
      const topUps = await sweepAutoTopUps(deps);
      const holds = await sweepCreditHolds(deps, {
        olderThan: new Date(Date.now() - HOLD_GRACE_MS),
        jobExists: chatPending(deps.queues),
      });
      return { ...expired, autoTopUps: topUps, creditHolds: holds };
    }
    if (job.name === "ledger-partitions") {
      const made = await ensurePartitions(deps.db);
      if (made.length > 0) deps.logger.info({ partitions: made }, "ledger partitions made ahead");
      return { made };
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
