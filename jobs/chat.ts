import { UnrecoverableError, type Job } from "bullmq";
import type { Db } from "../src/platform/db.js";
import { PermanentError } from "../src/errors.js";
import type { Logger } from "../src/platform/logger.js";
import { billChat } from "../src/billing/ledger/bill-chat.js";
import type { Plan } from "../src/billing/pricing/plans.js";
import type { Quota } from "../src/billing/ledger/quota.js";
import type { Config } from "../src/config.js";
import { classifyLlmError, type ChatCompletion, type ChatRequest, type Llm } from "../src/llm/client.js";
import { logProviderError } from "../src/llm/provider-errors.js";
import { capCompletion } from "../src/llm/completion-cap.js";
import { estimateUsage, usageFromProvider } from "../src/llm/usage.js";
import type { JobRun } from "../src/queues/processor.js";
import { type AbandonedChat, type ChatJobData } from "../src/queues/queues.js";
import { createChatStreamer, type ChatStreamerDeps } from "../src/chat/stream/writer.js";
import { requeueIfShuttingDown } from "../src/queues/requeue.js";

type Deps = ChatStreamerDeps & {
  db: Db;
  llm: Pick<Llm, "complete">;
  logger: Logger;
  plans: { get(id: string): Promise<Plan> };
  quota: Pick<Quota, "settle">;
  config: Pick<Config, "defaultModelPrice">;
};

/**
 * Processes one chat: call the LLM at most once per answer — with its completion capped at what a
 * hard limit reserved — then write the usage row (and a kept chat's answer) exactly once.
 */
export function createChatProcessor(deps: Deps) {
  const streamChat = createChatStreamer(deps);
  // `signal` aborts when a shutting-down worker gives its active jobs back (src/queues/shutdown.ts).
  return async (
    data: ChatJobData,
    job: Job<ChatJobData>,
    run: JobRun,
  ): Promise<ChatCompletion | AbandonedChat> => {
    const log = deps.logger.child({
      requestId: data.requestId,
      jobId: job.id,
      attempt: job.attemptsMade + 1,
    });
    if (data.stream) return streamChat(job, data, log, run);

    const kept = data.completion as ChatCompletion | undefined;
    if (kept) log.info("reusing the LLM answer kept on the job");
    const request = capCompletion(data.request as ChatRequest, data.quota?.completionTokens);
    const completion = kept ?? (await callLlm(deps.llm, request, job, data, log, run));

    const usage = completion.usage
      ? { tokens: usageFromProvider(completion.usage), source: "provider" as const }
      : {
          tokens: await estimateUsage(data.request, completion.choices[0]?.message?.content ?? ""),
          source: "estimated" as const,
        };
    let billed: Awaited<ReturnType<typeof billChat>>;
    try {
      billed = await billChat(deps, data, completion, usage);
    } catch (err) {
      // The ledger could not be written (Postgres away): keep the answer on the job so the retry
      // bills it instead of paying the LLM twice. Redis holds the completion only then.
      if (!kept)
        await job.updateData({ ...data, completion: completion as unknown as ChatJobData["completion"] });
      throw err;
    }
    const { inserted, billableTokens } = billed;
    log.info(
      { inserted, billableTokens, source: usage.source },
      inserted ? "usage recorded" : "usage already recorded",
    );
    return completion;
  };
}

async function callLlm(
  llm: Deps["llm"],
  request: ChatRequest,
  job: Job<ChatJobData>,
  data: ChatJobData,
  log: Logger,
  run: { token?: string; signal?: AbortSignal },
) {
  try {
    return await llm.complete(request, { signal: run.signal });
  } catch (err) {
    await requeueIfShuttingDown(job, run);
    const classified = classifyLlmError(err);
    logProviderError(log, err);
    if (classified instanceof PermanentError) {
      // The caller waits on this job: leave it what it may see of the refusal, then fail at once.
      await job.updateData({
        ...data,
        error: {
          status: classified.status,
          message: classified.message,
          type: classified.type,
          code: classified.code,
        },
      });
      throw new UnrecoverableError(classified.message);
    }
    throw classified;
  }
}
