import type { Queue } from "bullmq";
import type { Db } from "../platform/db.js";
import { getDeadLetter, markRedriven } from "./dead-letters.js";

export type RedriveOutcome = "retried" | "re-added" | "already-pending";

/** The job to put back to work, and what to add under its id should BullMQ no longer hold it. */
export interface RedriveTarget {
  queue: Queue;
  jobId: string;
  name: string;
  data: unknown;
}

/**
 * The one way a job that failed for good goes back to work, whoever asks (the dead-letter list, a
 * report's retry, their CLI commands). Safe to repeat and to race with Bull Board's Retry button: a
 * job that is waiting, running or done is left alone; a failed job is retried under its own id; a
 * job BullMQ no longer holds is re-added under it. Either way it runs with its full attempts again,
 * as a fresh job does: the operator redrives because the cause (Stripe down, a bad key) was fixed,
 * and a job that kept its spent attempts would fail for good on its first error.
 */
export async function redrive(db: Db, target: RedriveTarget): Promise<RedriveOutcome> {
  const { queue, jobId } = target;
  const job = await queue.getJob(jobId);
  let outcome: RedriveOutcome;
  if (!job) {
    await queue.add(target.name, target.data, { jobId });
    outcome = "re-added";
  } else if ((await job.getState()) === "failed") {
    await job.retry("failed", { resetAttemptsMade: true, resetAttemptsStarted: true });
    outcome = "retried";
  } else {
    return "already-pending";
  }
  await markRedriven(db, queue.name, jobId);
  return outcome;
}

export type DeadLetterRedriveOutcome = RedriveOutcome | "resolved" | "not-found";

/** Redrives a dead letter's job (see `redrive`); a resolved letter is left alone. */
export async function redriveDeadLetter(
  db: Db,
  queues: (name: string) => Queue | undefined,
  id: number,
): Promise<DeadLetterRedriveOutcome> {
  const letter = await getDeadLetter(db, id);
  if (!letter) return "not-found";
  if (letter.resolved_at) return "resolved";
  const queue = queues(letter.queue);
  if (!queue) throw new Error(`dead letter ${id} names unknown queue ${letter.queue}`);
  return redrive(db, { queue, jobId: letter.job_id, name: letter.name, data: letter.data });
}
