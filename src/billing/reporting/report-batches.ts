import type { Config } from "../../config.js";
import {
  reportBatchJobId,
  reportJobId,
  STREAM_MAX_EVENTS,
  type Queues,
  type StripeReportJobData,
} from "../../queues/queues.js";
import type { PlannedReport } from "./planned-reports.js";

/** A report to enqueue; with a `batchId` it goes in that batch's job, without one in its own. */
export interface ReportRef {
  id: number;
  batchId?: number | null;
}

/**
 * Whether a flush that claimed `reports` reports sends them in v2 stream batches:
 * REPORTING_METER_API=v2 always, "auto" from REPORTING_STREAM_MIN_REPORTS on, v1 never.
 */
export function batchesReports(config: Pick<Config, "reporting">, reports: number): boolean {
  const { meterApi, streamMinReports } = config.reporting;
  return meterApi === "v2" || (meterApi === "auto" && reports >= streamMinReports);
}

/**
 * Sets `batchId` on planned reports: batches of at most 100, each named by its first report's id.
 * A customer's reports for a meter stay in one batch where they fit, so two batches rarely wait on
 * the same meter lock (one call per customer and meter at a time).
 */
export function assignBatches(planned: PlannedReport[]): void {
  const groups = new Map<string, PlannedReport[]>();
  for (const p of planned) {
    const key = `${p.eventName}\u0000${p.customerId}`;
    const group = groups.get(key);
    if (group) group.push(p);
    else groups.set(key, [p]);
  }
  let batch: PlannedReport[] = [];
  const close = () => {
    const batchId = Math.min(...batch.map((p) => p.id));
    for (const p of batch) p.batchId = batchId;
    batch = [];
  };
  for (const group of groups.values()) {
    for (let i = 0; i < group.length; i += STREAM_MAX_EVENTS) {
      const chunk = group.slice(i, i + STREAM_MAX_EVENTS);
      if (batch.length + chunk.length > STREAM_MAX_EVENTS) close();
      batch.push(...chunk);
    }
  }
  if (batch.length > 0) close();
}

const JOBS_PER_ADD = 1_000;

/**
 * Adds one job per report without a batch and one per batch (its reports given); job ids derive
 * from the report or the batch, so adding twice is harmless.
 */
export async function enqueueReports(
  queue: Pick<Queues["stripeReport"], "addBulk">,
  reports: readonly ReportRef[],
): Promise<void> {
  const jobs: Array<{ name: string; data: StripeReportJobData; opts: { jobId: string } }> = [];
  const batches = new Map<number, number[]>();
  for (const r of reports) {
    if (r.batchId == null) {
      jobs.push({ name: "report", data: { reportId: r.id }, opts: { jobId: reportJobId(r.id) } });
      continue;
    }
    const ids = batches.get(r.batchId);
    if (ids) ids.push(r.id);
    else batches.set(r.batchId, [r.id]);
  }
  for (const [batchId, reportIds] of batches) {
    jobs.push({ name: "batch", data: { batchId, reportIds }, opts: { jobId: reportBatchJobId(batchId) } });
  }
  for (let i = 0; i < jobs.length; i += JOBS_PER_ADD) await queue.addBulk(jobs.slice(i, i + JOBS_PER_ADD));
}
