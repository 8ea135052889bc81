import type { Job } from "bullmq";
import { flushUsage } from "../src/billing/reporting/usage-flush.js";
import { sweepPendingReports } from "../src/billing/reporting/report-sweeper.js";

type Deps = Parameters<typeof flushUsage>[0] & Parameters<typeof sweepPendingReports>[0];

/** The `usage-flush` queue: scheduled "flush" ticks and "sweep" ticks. Returns counts only. */
export function createUsageFlushProcessor(deps: Deps) {
  return async (_data: unknown, job: Pick<Job, "name">) => {
    if (job.name === "sweep") {
      const swept = await sweepPendingReports(deps);
      return { requeued: swept.requeued.length, markedFailed: swept.markedFailed.length };
    }
    const result = await flushUsage(deps);
    return { reports: result.reports.length, rows: result.rows, unlinked: result.unlinked.length };
  };
}
