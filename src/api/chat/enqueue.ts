import type { Job } from "bullmq";
import type { WebDeps } from "../../deps.js";
import { unavailable } from "../../errors.js";
import type { AuthenticatedCustomer } from "../../billing/customers/customers.js";
import type { ChatJobData } from "../../queues/queues.js";
import type { ChatOutcome } from "../../queues/chat-replies.js";
import type { ChatCall } from "./request.js";
import type { Claim } from "./idempotency.js";

type Deps = Pick<WebDeps, "config" | "queues" | "chatReplies">;

/** The chat's job payload: the request as the worker sends it, and what it settles afterwards. */
export function chatJobData(
  customer: AuthenticatedCustomer,
  call: ChatCall,
  claim: Claim,
  { quota, endUserQuota, credits }: Pick<ChatJobData, "quota" | "endUserQuota" | "credits">,
): ChatJobData {
  return {
    requestId: claim.requestId,
    customerId: customer.customerId,
    planId: customer.plan.id,
    request: call.request,
    ...(claim.bodyHash ? { bodyHash: claim.bodyHash } : {}),
    ...(call.keepS > 0 ? { keepS: call.keepS } : {}),
    receivedAt: new Date().toISOString(),
    ...(call.mode === "stream" ? { stream: true } : {}),
    ...(call.endUser === undefined ? {} : { endUser: call.endUser }),
    ...(quota ? { quota } : {}),
    ...(endUserQuota ? { endUserQuota } : {}),
    ...(credits ? { credits } : {}),
  };
}

/**
 * Adds the chat's job under its request id. `listen`: the caller awaits a job this add creates, so
 * its outcome is listened for before the add (outcome.ts); the caller cancels it once answered.
 */
export async function enqueueChat(
  deps: Deps,
  data: ChatJobData,
  listen: boolean,
): Promise<{ job: Job<ChatJobData>; outcome?: ChatOutcome }> {
  // Listening starts before the add, so the outcome of the job the add creates cannot go unheard.
  if (listen)
    await deps.chatReplies.waitUntilReady().catch((err: unknown) => {
      throw unavailable("The request queue is unavailable; retry shortly.", err);
    });
  const outcome = listen ? deps.chatReplies.listen(data.requestId, deps.config.chat.waitMs) : undefined;
  try {
    // A repeated request id is ignored by BullMQ while the job exists: the first payload wins.
    const job = await deps.queues.chat.add(
      "chat",
      listen ? { ...data, replyTo: deps.chatReplies.channel } : data,
      { jobId: data.requestId },
    );
    return { job, ...(outcome ? { outcome } : {}) };
  } catch (err) {
    outcome?.cancel();
    throw unavailable("The request queue is unavailable; retry shortly.", err);
  }
}
