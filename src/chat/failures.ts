import type { Db } from "../platform/db.js";
import type { Logger } from "../platform/logger.js";
import { releaseChatHolds, type HoldReleaseDeps } from "./holds.js";
import { storeChatOutcomes } from "./requests.js";
import { upstreamFailure } from "../llm/provider-errors.js";
import type { ChatError, ChatJobData } from "../queues/queues.js";

/** Keeps a kept chat's failure in Postgres, so a repeated key or a poll answers it after Redis forgot. */
export async function storeChatFailure(
  db: Db,
  data: ChatJobData,
  error: ChatError,
  retryable: boolean,
): Promise<void> {
  if (!data.keepS) return;
  await storeChatOutcomes(db, [
    {
      requestId: data.requestId,
      customerId: data.customerId,
      keepS: data.keepS,
      status: "failed",
      error,
      retryable,
    },
  ]);
}

/**
 * A chat job that failed for good gives its reservations back — hard limit, end-user limit, credits
 * (retries and stalls do not) — and, when it is kept, records the failure: the provider's own error as
 * final, a transient one as retryable (a repeat of the key runs it again, as a client retrying a 502
 * expects).
 */
export function settleFailedChat(deps: HoldReleaseDeps & { db: Db }, data: ChatJobData, log: Logger): void {
  releaseChatHolds(deps, data).catch((err: unknown) =>
    log.error(
      { err },
      "could not release a chat's reservations; credits stay held until the counter is rebuilt, limits until the period ends",
    ),
  );
  const error = data.error ?? upstreamFailure(data.requestId);
  storeChatFailure(deps.db, data, error, data.error === undefined).catch((err: unknown) =>
    log.error({ err }, "could not store a chat's failure; a repeat of its key will run it again"),
  );
}
