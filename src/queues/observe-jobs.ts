import type { Worker } from "bullmq";
import type { Metrics } from "../platform/metrics.js";
import { onFailure } from "./failures.js";

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
  onFailure(worker, (job, _err, final) => {
    metrics.jobDuration.observe({ queue, outcome: final ? "failed" : "retry" }, seconds(job));
    if (final && deadLetters) metrics.deadLetters.inc({ queue });
  });
}
