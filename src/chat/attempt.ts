import type OpenAI from "openai";
import type { PermanentError } from "../errors.js";
import type { Logger } from "../platform/logger.js";
import type { ChatUsage } from "../billing/ledger/bill-chat.js";
import { estimateUsage, usageFromProvider, type PromptRequest } from "../llm/usage.js";
import type { ChatError, ChatJobData } from "../queues/queues.js";

/**
 * One attempt at a chat job as the chat runners see it: plain data and callbacks. What is
 * BullMQ's (updating the job, handing it back, failing it for good) stays in jobs/chat.ts.
 */
export type ChatAttempt = {
  data: ChatJobData;
  log: Logger;
  /** A failure of this attempt is final: no retry follows. */
  lastAttempt: boolean;
  /** Aborts when a shutting-down worker gives its active jobs back (src/queues/shutdown.ts). */
  signal?: AbortSignal;
  /** Keeps fields on the job: for its retry, or for the caller waiting on it. */
  keep(patch: Pick<ChatJobData, "completion" | "error">): Promise<void>;
  /**
   * When the worker is shutting down, puts the job back in the wait list (no attempt spent) for
   * another worker, and throws; otherwise returns.
   */
  handBackIfShuttingDown(): Promise<void>;
};

/**
 * The provider's usage when it sent one; otherwise estimated from the request and the answer —
 * except the prompt side, taken as the provider reported it when it did before the stream was cut
 * (`reportedPrompt`, see ProviderChunk): cache reads and writes are then priced as they were.
 */
export async function chatUsage(
  request: PromptRequest,
  provided: OpenAI.CompletionUsage | null | undefined,
  answer: string,
  reportedPrompt?: OpenAI.CompletionUsage,
): Promise<ChatUsage> {
  if (provided) return { tokens: usageFromProvider(provided), source: "provider" };
  const estimated = await estimateUsage(request, answer);
  if (!reportedPrompt) return { tokens: estimated, source: "estimated" };
  const { promptTokens, cachedTokens, cacheWriteTokens } = usageFromProvider(reportedPrompt);
  return { tokens: { ...estimated, promptTokens, cachedTokens, cacheWriteTokens }, source: "estimated" };
}

/**
 * The most completion tokens the provider may produce for this job: what its hard-limit, end-user
 * and credit reservations cover (the smallest), or undefined when it holds none.
 */
export function completionCap(
  data: Pick<ChatJobData, "quota" | "endUserQuota" | "credits">,
): number | undefined {
  const holds = [data.quota, data.endUserQuota, data.credits];
  const caps = holds.map((hold) => hold?.completionTokens).filter((cap): cap is number => cap !== undefined);
  return caps.length === 0 ? undefined : Math.min(...caps);
}

/** What the caller waiting on a chat may see of a provider's refusal. */
export function refusalOf(err: PermanentError): ChatError {
  return { status: err.status, message: err.message, type: err.type, code: err.code };
}
