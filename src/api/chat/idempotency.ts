import type { Job } from "bullmq";
import type { WebDeps } from "../../deps.js";
import { HttpError, unavailable } from "../../errors.js";
import { canonicalJson, idempotencyKeyHash, newChatRequestId, sha256 } from "../../platform/ids.js";
import { claimIdempotencyKey, reopenChat, type StoredChat } from "../../chat/requests.js";
import { chatCancelKey, chatStreamKey } from "../../chat/stream/protocol.js";
import type { ChatJobData } from "../../queues/queues.js";
import type { ChatCall } from "./request.js";
import { abandoned, failedTransiently, getChatJob, storedState, type ChatState } from "./state.js";

type Deps = Pick<WebDeps, "config" | "db" | "redis" | "queues">;

/** The request id a chat runs under, and what an earlier request with its Idempotency-Key left. */
export interface Claim {
  requestId: string;
  /** A keyed request's body hash, kept on its job. */
  bodyHash?: string;
  /** A repeat: the record of the request that holds the key. */
  earlier?: StoredChat;
}

/** The job a repeat found under its request id, while Redis has it, and whether it runs again. */
export interface FoundJob {
  job?: Job<ChatJobData>;
  rerun: boolean;
}

/**
 * Claims the request's Idempotency-Key (DESIGN §3: Postgres holds the claim and the outcome, and the
 * request id is the job id). Without a key, or on a fresh claim, the request id is new.
 */
export async function claimRequest(deps: Deps, customerId: string, call: ChatCall): Promise<Claim> {
  if (call.idempotencyKey === undefined) return { requestId: newChatRequestId() };
  const { fresh, chat } = await claimKey(deps, customerId, call);
  return { requestId: chat.requestId, bodyHash: chat.bodyHash!, ...(fresh ? {} : { earlier: chat }) };
}

/** A repeat's final outcome: answered as it is, nothing runs. */
export function finalOutcome({ earlier }: Claim): ChatState | undefined {
  if (!earlier || earlier.status === "pending" || rerunnable(earlier)) return undefined;
  return storedState(earlier);
}

/**
 * The job a repeat joins, or runs again: one whose retries ran out on transient errors (as a client
 * retrying a 502 expects; concurrent repeats share the one rerun), or a stream abandoned before it
 * started. Only a repeat can find a job: a fresh claim's request id is new.
 */
export async function findJob(deps: Deps, { requestId, earlier }: Claim): Promise<FoundJob> {
  if (!earlier) return { rerun: false };
  if (rerunnable(earlier)) {
    await reopenChat(deps.db, requestId).catch((err: unknown) => {
      throw unavailable("The request store is unavailable; retry shortly.", err);
    });
  }
  const job = await getChatJob(deps, requestId);
  return { job, rerun: job !== undefined && (failedTransiently(job) || abandoned(job)) };
}

/**
 * What a repeat does with the job it found, once its quota and credits are held and before the (then ignored)
 * add: a job to rerun goes back to the wait list; a stream it joins is kept going.
 */
export async function resumeJob(
  deps: Deps,
  { job, rerun }: FoundJob,
  holds: Holds,
  mode: ChatCall["mode"],
): Promise<void> {
  if (!job) return;
  if (rerun) return runAgain(deps, job, holds);
  if (mode === "stream" && !job.finishedOn) {
    // Joining a stream that has not ended: a cancel left by an earlier client must not stop it.
    await deps.redis.del(chatCancelKey(deps.config, job.data.requestId)).catch(() => {});
  }
}

/**
 * The reservations a request made before its job, and the end user the end-user hold is keyed by: a
 * job run again carries the new ones.
 */
export type Holds = Pick<ChatJobData, "quota" | "endUser" | "endUserQuota" | "credits">;

const rerunnable = (chat: StoredChat) => chat.status === "failed" && chat.retryable;

/** Same key, same body → the same request; same key, other body → 422, as Stripe and OpenAI do. */
async function claimKey(
  deps: Deps,
  customerId: string,
  call: ChatCall,
): Promise<{ fresh: boolean; chat: StoredChat }> {
  const bodyHash = sha256(canonicalJson(call.body));
  let claim: { fresh: boolean; chat: StoredChat };
  try {
    claim = await claimIdempotencyKey(deps.db, {
      requestId: newChatRequestId(),
      customerId,
      keyHash: idempotencyKeyHash(customerId, call.idempotencyKey!),
      bodyHash,
      keepS: call.keepS,
    });
  } catch (err) {
    throw unavailable("The request store is unavailable; retry shortly.", err);
  }
  if (claim.chat.bodyHash !== bodyHash) {
    throw new HttpError(
      422,
      "This Idempotency-Key was already used with a different request body.",
      "invalid_request_error",
      "idempotency_key_reused",
    );
  }
  return claim;
}

/**
 * Back to the wait list with a fresh retry budget; a concurrent repeat that got there first wins. A
 * stream's earlier attempt leaves nothing to replay: its entries are removed first.
 */
async function runAgain(deps: Deps, job: Job<ChatJobData>, holds: Holds): Promise<void> {
  const state = job.returnvalue ? "completed" : "failed";
  try {
    if (job.data.stream) {
      await deps.redis.del(
        chatStreamKey(deps.config, job.data.requestId),
        chatCancelKey(deps.config, job.data.requestId),
      );
    }
    const held = Object.fromEntries(Object.entries(holds).filter(([, hold]) => hold !== undefined));
    if (holds.quota || holds.endUserQuota || holds.credits) await job.updateData({ ...job.data, ...held });
    await job.retry(state, { resetAttemptsMade: true, resetAttemptsStarted: true });
  } catch (err) {
    if ((await job.getState().catch(() => "unknown")) === state) {
      throw unavailable("The request queue is unavailable; retry shortly.", err);
    }
  }
}
