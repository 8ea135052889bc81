import type { Job, Queue, Worker } from "bullmq";
import type { Db } from "../platform/db.js";
import type { Logger } from "../platform/logger.js";
import { onFinalFailure } from "./failures.js";

export interface DeadLetter {
  id: number;
  queue: string;
  job_id: string;
  name: string;
  data: unknown;
  reason: string;
  attempts: number;
  failed_at: Date;
  redrive_count: number;
  redriven_at: Date | null;
  resolved_at: Date | null;
}

/** A job failed for good: record it durably (BullMQ's failed set is trimmed; this table is not). */
export async function recordDeadLetter(db: Db, job: Job, reason: string): Promise<void> {
  await db("dead_letters")
    .insert({
      queue: job.queueName,
      job_id: job.id,
      name: job.name,
      data: JSON.stringify(job.data),
      reason,
      attempts: job.attemptsMade,
    })
    .onConflict(["queue", "job_id"])
    .merge({
      reason,
      attempts: job.attemptsMade,
      data: JSON.stringify(job.data),
      failed_at: db.fn.now(),
      resolved_at: null,
    });
}

export async function listDeadLetters(
  db: Db,
  filter: { queue?: string; status?: "open" | "resolved" | "all"; limit?: number } = {},
): Promise<DeadLetter[]> {
  const query = db("dead_letters")
    .orderBy("id", "desc")
    .limit(filter.limit ?? 100);
  if (filter.queue) query.where({ queue: filter.queue });
  if ((filter.status ?? "open") === "open") query.whereNull("resolved_at");
  if (filter.status === "resolved") query.whereNotNull("resolved_at");
  return query;
}

export type RedriveOutcome = "retried" | "re-added" | "already-pending" | "resolved" | "not-found";

/**
 * Puts a dead letter's job back to work. Safe to repeat: a job that is already waiting, running or
 * done is left alone, and a job BullMQ no longer holds is re-added under the same id.
 */
export async function redriveDeadLetter(
  db: Db,
  queues: (name: string) => Queue | undefined,
  id: number,
): Promise<RedriveOutcome> {
  const row: DeadLetter | undefined = await db("dead_letters").where({ id }).first();
  if (!row) return "not-found";
  if (row.resolved_at) return "resolved";
  const queue = queues(row.queue);
  if (!queue) throw new Error(`dead letter ${id} names unknown queue ${row.queue}`);
  const job = await queue.getJob(row.job_id);
  let outcome: RedriveOutcome;
  if (!job) {
    await queue.add(row.name, row.data, { jobId: row.job_id });
    outcome = "re-added";
  } else if ((await job.getState()) === "failed") {
    await job.retry("failed");
    outcome = "retried";
  } else {
    outcome = "already-pending";
  }
  await db("dead_letters")
    .where({ id })
    .update({ redriven_at: db.fn.now(), redrive_count: db.raw("redrive_count + 1") });
  return outcome;
}

/** The one dead-letter mechanism for every queue that can fail for good. */
export function attachDeadLetters(worker: Worker, db: Db, logger: Logger): void {
  onFinalFailure(worker, (job, err) => {
    logger.error(
      { queue: job.queueName, jobId: job.id, attempts: job.attemptsMade, reason: err.message },
      "dead letter",
    );
    recordDeadLetter(db, job, err.message).catch((error) =>
      logger.error(
        { err: error, queue: job.queueName, jobId: job.id },
        "could not record a dead letter; the job stays in the failed set",
      ),
    );
  });
  worker.on("completed", (job) => {
    // Any completion may be a redriven job, including one re-added after BullMQ dropped it (a fresh
    // job with no failure history), so check every time: one indexed UPDATE that usually matches nothing.
    db("dead_letters")
      .where({ queue: job.queueName, job_id: job.id })
      .whereNull("resolved_at")
      .update({ resolved_at: db.fn.now() })
      .catch((error: unknown) =>
        logger.error({ err: error, queue: job.queueName, jobId: job.id }, "could not resolve a dead letter"),
      );
  });
}
