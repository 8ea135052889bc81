import type { Job, Worker } from "bullmq";

/** Whether a failure of the running attempt is the job's last: BullMQ retries while attempts remain. */
export function isLastAttempt(job: Pick<Job, "attemptsMade" | "opts">): boolean {
  return job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
}

/**
 * Calls `fn` on every failure of a worker's jobs, telling whether it was the last. BullMQ's
 * `retries-exhausted` does not fire for an UnrecoverableError, so "failed for good" is `finishedOn`
 * being set in the `failed` event: BullMQ sets it only when the job moved to the failed set.
 */
export function onFailure(worker: Worker, fn: (job: Job, err: Error, final: boolean) => void): void {
  worker.on("failed", (job, err) => {
    if (job) fn(job, err, job.finishedOn !== undefined);
  });
}

/** Calls `fn` only when a job failed for good: out of attempts, or failed as unrecoverable. */
export function onFinalFailure(worker: Worker, fn: (job: Job, err: Error) => void): void {
  onFailure(worker, (job, err, final) => {
    if (final) fn(job, err);
  });
}
