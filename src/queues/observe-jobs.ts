import type { Worker } from "bullmq";
import type { Metrics } from "../platform/metrics.js";

/** Job durations and outcomes per queue, and dead letters, from a worker's own events. */
export function observeJobs(
  worker: Worker,
  queue: string,
  metrics: Pick<Metrics, "jobDuration" | "deadLetters">,
  deadLetters: boolean,
): void {
  const seconds = (job: { processedOn?: number; finishedOn?: number }) =>
    Math.max(0, ((job.finishedOn ?? Date.now()) - (job.processedOn ?? Date.now())) / 1000);
  worker.on("completed", (job) => metrics.jobDuration.observe({ queue, outcome: "completed" }, seconds(job)));
  worker.on("failed", (job) => {
    if (!job) return;
    // finishedOn is set only when the job failed for good (see src/queues/dead-letters.ts).
    const final = job.finishedOn !== undefined;
    metrics.jobDuration.observe({ queue, outcome: final ? "failed" : "retry" }, seconds(job));
    if (final && deadLetters) metrics.deadLetters.inc({ queue });
  });
}
