import type { Db } from "../src/platform/db.js";
import type { Logger } from "../src/platform/logger.js";
import { purgeExpiredChats } from "../src/chat/requests.js";

/** The `maintenance` queue's scheduled "purge-chats": drops chat claims and outcomes past their promise. */
export function createMaintenanceProcessor(deps: { db: Db; logger: Logger }) {
  return async () => {
    const purged = await purgeExpiredChats(deps.db);
    if (purged > 0) deps.logger.info({ purged }, "expired chat claims and outcomes purged");
    return { purged };
  };
}
