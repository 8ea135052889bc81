import type { Queue } from "bullmq";

/** What a sweep needs from one kind of durable work whose job may be lost (its rows in Postgres). */
export interface LostJobSweep<Id extends string | number> {
  /** The next page of pending rows after `after` (undefined: from the start), in id order. */
  page(after: Id | undefined): Promise<Id[]>;
  /** The jobs that may carry the row's work (its own; a batch's): it is lost when none is alive. */
  jobIds(id: Id): string[];
  queue: Pick<Queue, "getJobState">;
  /** Adds a job for each row; job ids make a repeat harmless. */
  enqueue(ids: Id[]): Promise<void>;
  /** Marks failed the rows still pending whose job already failed for good. */
  markFailed(ids: Id[]): Promise<void>;
}

/**
 * The one sweep for "Postgres is the truth, Redis the fast path": pending rows whose job is
 * missing (a crash between a commit and its enqueue, a Redis that lost data) are enqueued again;
 * pending rows whose job failed for good without saying so are marked failed.
 */
export async function sweepLostJobs<Id extends string | number>(
  sweep: LostJobSweep<Id>,
): Promise<{ requeued: Id[]; markedFailed: Id[] }> {
  const requeued: Id[] = [];
  const markedFailed: Id[] = [];
  let after: Id | undefined;
  for (;;) {
    const ids = await sweep.page(after);
    if (ids.length === 0) break;
    after = ids[ids.length - 1]!;
    const states = await Promise.all(
      ids.map(async (id) =>
        rowState(await Promise.all(sweep.jobIds(id).map((j) => sweep.queue.getJobState(j)))),
      ),
    );
    const missing = ids.filter((_, i) => states[i] === "unknown");
    const failed = ids.filter((_, i) => states[i] === "failed");
    await sweep.enqueue(missing);
    if (failed.length > 0) await sweep.markFailed(failed);
    requeued.push(...missing);
    markedFailed.push(...failed);
  }
  return { requeued, markedFailed };
}

/**
 * One row's state from its jobs' states: alive while any job may still run it; else failed if one
 * failed for good; unknown (lost) when BullMQ holds none of them. A completed job did the work.
 */
function rowState(states: readonly string[]): "alive" | "failed" | "unknown" | "completed" {
  if (states.some((s) => s !== "unknown" && s !== "failed" && s !== "completed")) return "alive";
  if (states.includes("failed")) return "failed";
  if (states.includes("completed")) return "completed";
  return "unknown";
}
