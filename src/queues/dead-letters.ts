import type { Job, Worker } from "bullmq";
import type { Knex } from "knex";
import type { Db } from "../platform/db.js";
import type { Logger } from "../platform/logger.js";
import { onFinalFailure } from "./failures.js";

// Every statement on `dead_letters` lives here; callers (workers, the flush, redrive, admin API, CLI)
// call these functions.

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

/** What a dead letter says about its job. */
export interface NewDeadLetter {
  queue: string;
  jobId: string;
  name: string;
  data: unknown;
  reason: string;
  attempts: number;
}

const row = ({ jobId, data, ...rest }: NewDeadLetter) => ({
  ...rest,
  job_id: jobId,
  data: JSON.stringify(data),
});

/** A job failed for good: record it durably (BullMQ's failed set is trimmed; this table is not). */
export async function recordDeadLetter(db: Db, job: Job, reason: string): Promise<void> {
  const letter = row({
    queue: job.queueName,
    jobId: job.id!,
    name: job.name,
    data: job.data,
    reason,
    attempts: job.attemptsMade,
  });
  await db("dead_letters").insert(letter).onConflict(["queue", "job_id"]).merge({
    reason,
    attempts: letter.attempts,
    data: letter.data,
    failed_at: db.fn.now(),
    resolved_at: null,
  });
}

/**
 * Dead letters for jobs that never ran (a report the flush quarantined), inside the caller's
 * transaction so the letter exists exactly when the work it stands for does. A job's existing
 * letter is kept.
 */
export async function recordUnrunDeadLetters(
  trx: Knex.Transaction,
  letters: ReadonlyArray<Omit<NewDeadLetter, "attempts">>,
): Promise<void> {
  await trx("dead_letters")
    .insert(letters.map((l) => row({ ...l, attempts: 0 })))
    .onConflict(["queue", "job_id"])
    .ignore();
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

export async function getDeadLetter(db: Db, id: number): Promise<DeadLetter | undefined> {
  return db("dead_letters").where({ id }).first();
}

/** A job was put back to work: its open dead letter, if any, says when and how often. */
export async function markRedriven(db: Db, queue: string, jobId: string): Promise<void> {
  await db("dead_letters")
    .where({ queue, job_id: jobId })
    .whereNull("resolved_at")
    .update({ redriven_at: db.fn.now(), redrive_count: db.raw("redrive_count + 1") });
}

/** A job completed: its open dead letter, if any, is resolved. */
export async function resolveDeadLetter(db: Db, queue: string, jobId: string): Promise<void> {
  await db("dead_letters")
    .where({ queue, job_id: jobId })
    .whereNull("resolved_at")
    .update({ resolved_at: db.fn.now() });
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
    resolveDeadLetter(db, job.queueName, job.id!).catch((error: unknown) =>
      logger.error({ err: error, queue: job.queueName, jobId: job.id }, "could not resolve a dead letter"),
    );
  });
}
