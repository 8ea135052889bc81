import type { Response } from "express";
import type { Job } from "bullmq";
import type { WebDeps } from "../../deps.js";
import type { ChatCompletion } from "../../llm/client.js";
import type { CostDetails } from "../../billing/ledger/bill-chat.js";
import type { ChatJobData } from "../../queues/queues.js";
import { unlessDraining } from "./drain.js";
import { releaseHolds } from "./credits.js";
import { pollUntilFinished, type ChatOutcome } from "../../queues/chat-replies.js";
import type { ChatCall } from "./request.js";
import { chatState, type ChatState } from "./state.js";
import { relayChatStream, replayCompletion } from "./stream-relay.js";

type Deps = Pick<
  WebDeps,
  | "config"
  | "db"
  | "redis"
  | "queues"
  | "quota"
  | "endUserQuota"
  | "creditCounter"
  | "logger"
  | "streamReader"
  | "draining"
>;

type Asked = Pick<ChatCall, "mode" | "includeUsage">;

/** Answers a chat from its state: the completion, its error, or 202 while it is not finished. */
export function answerState(res: Response, requestId: string, state: ChatState, asked: Asked): void {
  if (asked.mode === "async" || (state.status !== "succeeded" && state.status !== "failed")) {
    return accepted(res, requestId);
  }
  if (state.status === "failed") {
    res.status(state.error!.status).json(state.error!.toBody());
    return;
  }
  if (asked.mode === "stream") return replayCompletion(res, state.completion!, asked.includeUsage);
  sendCompletion(res, state.completion!);
}

/**
 * A completion with its charge in headers, from its `usage.cost_details` (src/billing/ledger/
 * bill-chat.ts): what the request adds to the bill, and the credit balance or allowance left.
 */
function sendCompletion(res: Response, completion: ChatCompletion): void {
  const details = (completion.usage as { cost_details?: CostDetails } | undefined)?.cost_details;
  if (details) {
    res.setHeader("meterline-charge-micros", String(details.charge_micros));
    if (details.credit_balance_micros !== undefined)
      res.setHeader("meterline-credit-balance-micros", String(details.credit_balance_micros));
    if (details.allowance_remaining_tokens !== undefined)
      res.setHeader("meterline-allowance-remaining-tokens", String(details.allowance_remaining_tokens));
  }
  res.json(completion);
}

/** 202 with where to poll: an async chat, or one not finished in time. */
export function accepted(res: Response, requestId: string): void {
  res
    .status(202)
    .location(`/v1/chats/${requestId}`)
    .json({ id: requestId, object: "chat.request", status: "queued" });
}

/**
 * Answers a synchronous chat with its completion once its job finishes: `outcome` when this request
 * listened before adding the job, the job's state read until it finishes otherwise. Not finished within CHAT_WAIT_MS (or
 * the process is draining): answered from its state, 202 while it is still queued or running.
 */
export async function answerSync(
  deps: Deps,
  res: Response,
  customerId: string,
  { job, outcome }: { job: Job<ChatJobData>; outcome?: ChatOutcome },
): Promise<void> {
  try {
    const completion = await unlessDraining(
      outcome?.finished ?? pollUntilFinished(deps.queues.chat, job.id!, deps.config.chat.waitMs),
      deps.draining.signal,
    );
    sendCompletion(res, completion as ChatCompletion);
  } catch {
    await answerUnfinished(deps, res, job.data.requestId, customerId);
  } finally {
    outcome?.cancel();
  }
}

/**
 * Relays a streamed chat. A job this request joined may write no stream (a repeat with `stream` of a
 * chat begun without it) or its stream may have expired: the relay replays its completion instead.
 */
export function answerStream(
  deps: Deps,
  res: Response,
  requestId: string,
  includeUsage: boolean,
  joined: Job<ChatJobData> | undefined,
): Promise<void> {
  const completion = joined
    ? pollUntilFinished(deps.queues.chat, joined.id!, deps.config.chat.waitMs).then(
        asCompletion,
        () => undefined,
      )
    : undefined;
  return relayChatStream(deps, res, { requestId, includeUsage, ...(completion ? { completion } : {}) });
}

async function answerUnfinished(deps: Deps, res: Response, requestId: string, customerId: string) {
  const state = await chatState(deps, requestId, customerId);
  if (state?.status === "failed" && state.job) {
    // The worker releases too; both are idempotent, and this one holds when the worker died first.
    await releaseHolds(deps, customerId, requestId, state.job.data);
  }
  // Still queued or running after the wait: the caller polls instead of holding the connection.
  answerState(res, requestId, state ?? { status: "queued" }, { mode: "sync", includeUsage: false });
}

// A stream abandoned before it started answers nothing: its repeat runs it again.
const asCompletion = (result: unknown): ChatCompletion | undefined =>
  result && typeof result === "object" && !("abandoned" in result) ? (result as ChatCompletion) : undefined;
