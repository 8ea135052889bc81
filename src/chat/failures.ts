import type { Db } from "../platform/db.js";
import type { Logger } from "../platform/logger.js";
import type { Quota } from "../billing/ledger/quota.js";
import type { CreditCounter } from "../billing/credits/counter.js";
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
 * A chat job that failed for good gives its quota and credit reservations back (retries and stalls do not) and,
 * when it is kept, records the failure: the provider's own error as final, a transient one as
 * retryable (a repeat of the key runs it again, as a client retrying a 502 expects).
 */
export function settleFailedChat(
  deps: { db: Db; quota: Pick<Quota, "release">; creditCounter: Pick<CreditCounter, "release"> },
  data: ChatJobData,
  log: Logger,
): void {
  if (data.credits) {
    deps.creditCounter
      .release(data.customerId, data.requestId)
      .catch((err: unknown) =>
        log.error(
          { err },
          "could not release a credit reservation; it stays held until the counter is rebuilt",
        ),
      );
  }
  if (data.quota) {
    deps.quota
      .release(data.customerId, data.requestId, data.quota)
      .catch((err: unknown) =>
        log.error({ err }, "could not release a quota reservation; it counts until the period ends"),
      );
  }
  const error = data.error ?? upstreamFailure(data.requestId);
  storeChatFailure(deps.db, data, error, data.error === undefined).catch((err: unknown) =>
    log.error({ err }, "could not store a chat's failure; a repeat of its key will run it again"),
  );
}
