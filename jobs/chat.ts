import type { Worker } from "bullmq";
import type { Db } from "../src/platform/db.js";
import type { Logger } from "../src/platform/logger.js";
import type { ChatCompletion } from "../src/llm/client.js";
import type { ChatAttempt } from "../src/chat/attempt.js";
import { settleFailedChat } from "../src/chat/failures.js";
import type { HoldReleaseDeps } from "../src/chat/holds.js";
import { runCompletion, type CompletionRunDeps } from "../src/chat/run-completion.js";
import { runStream, type StreamRunDeps } from "../src/chat/run-stream.js";
import { isLastAttempt, onFinalFailure } from "../src/queues/failures.js";
import type { JobProcessor } from "../src/queues/processor.js";
import { chatJobSchema, type AbandonedChat, type ChatJobData } from "../src/queues/queues.js";
import { requeueIfShuttingDown } from "../src/queues/requeue.js";

type Deps = CompletionRunDeps & StreamRunDeps & { logger: Logger };

/** The `chat` queue: one chat request, answered plainly or streamed, billed exactly once. */
export function createChatProcessor(deps: Deps): JobProcessor<"chat", ChatCompletion | AbandonedChat> {
  return async (data, job, run) => {
    let kept = data;
    const attempt: ChatAttempt = {
      data,
      log: deps.logger.child({ requestId: data.requestId, jobId: job.id, attempt: job.attemptsMade + 1 }),
      lastAttempt: isLastAttempt(job),
      signal: run.signal,
      keep: async (patch) => {
        kept = { ...kept, ...patch };
        await job.updateData(kept);
      },
      // `signal` aborts when a shutting-down worker gives its active jobs back (src/queues/shutdown.ts).
      handBackIfShuttingDown: () => requeueIfShuttingDown(job, run),
    };
    return data.stream ? runStream(deps, attempt) : runCompletion(deps, attempt);
  };
}

/** Runs the chat domain's clean-up when a chat job failed for good (src/chat/failures.ts). */
export function onChatFailedForGood(
  worker: Worker,
  deps: HoldReleaseDeps & { db: Db; logger: Logger },
): void {
  onFinalFailure(worker, (job) => {
    const parsed = chatJobSchema.safeParse(job.data);
    if (!parsed.success) return;
    const data: ChatJobData = parsed.data;
    settleFailedChat(deps, data, deps.logger.child({ jobId: job.id, requestId: data.requestId }));
  });
}
