import { WaitingError, type Job } from "bullmq";

/**
 * A worker that shuts down aborts its jobs' signals near the deadline: put such a job back in the
 * wait list (no attempt spent) so another worker runs it, instead of letting it stall. Throws
 * BullMQ's WaitingError when it did so; returns otherwise.
 */
export async function requeueIfShuttingDown(
  job: Job,
  run: { token?: string; signal?: AbortSignal },
): Promise<void> {
  if (!run.signal?.aborted || run.token === undefined) return;
  await job.moveToWait(run.token);
  throw new WaitingError();
}
