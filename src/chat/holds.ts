import type { EndUserQuota, Quota } from "../billing/ledger/quota.js";
import type { CreditCounter } from "../billing/credits/counter.js";
import type { ChatJobData } from "../queues/queues.js";

/** What giving a chat's reservations back needs: each counter's release. */
export type HoldReleaseDeps = {
  quota: Pick<Quota, "release">;
  endUserQuota: Pick<EndUserQuota, "release">;
  creditCounter: Pick<CreditCounter, "release">;
};

/** The reservations a chat holds before its job runs, and the end user its end-user hold is keyed by. */
export type ChatHolds = Pick<
  ChatJobData,
  "customerId" | "requestId" | "quota" | "endUser" | "endUserQuota" | "credits"
>;

/**
 * Gives back every reservation a chat holds — hard limit, end-user limit, credits — when no usage
 * row will settle them. Each release is idempotent per request id, so the API, the stream runner and
 * the failed-job handler may all call it. Tries them all, then rejects with the first failure.
 */
export async function releaseChatHolds(deps: HoldReleaseDeps, holds: ChatHolds): Promise<void> {
  const { customerId, requestId, quota, endUser, endUserQuota, credits } = holds;
  const results = await Promise.allSettled([
    quota && deps.quota.release(customerId, requestId, quota),
    endUserQuota && endUser !== undefined
      ? deps.endUserQuota.release({ customerId, endUser }, requestId, endUserQuota)
      : undefined,
    credits && deps.creditCounter.release(customerId, requestId),
  ]);
  const failed = results.find((r): r is PromiseRejectedResult => r.status === "rejected");
  if (failed) throw failed.reason;
}
