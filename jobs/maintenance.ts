import type { Job } from "bullmq";
import type { Db } from "../src/platform/db.js";
import type { Logger } from "../src/platform/logger.js";
import { purgeExpiredChats } from "../src/chat/requests.js";
import { expireCredits } from "../src/billing/credits/expiry.js";

/**
 * The `maintenance` queue's scheduled jobs, by name: "purge-chats" drops chat claims and outcomes
 * past their promise; "expire-credits" writes the expiry entries of credit grants past `expires_at`.
 */
export function createMaintenanceProcessor(deps: { db: Db; logger: Logger }) {
  return async (_data: unknown, job: Pick<Job, "name">) => {
    if (job.name === "expire-credits") {
      const expired = await expireCredits(deps.db);
      if (expired.grants > 0) deps.logger.info(expired, "credit grants expired");
      return expired;
    }
    const purged = await purgeExpiredChats(deps.db);
    if (purged > 0) deps.logger.info({ purged }, "expired chat claims and outcomes purged");
    return { purged };
  };
}
