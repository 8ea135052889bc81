import type { Knex } from "knex";
import { reportIdentifier } from "./usage-reports.js";

/** One report the flush is about to write: its window's rows and their sum (exact, as text). */
export interface PlannedReport {
  id: number;
  customerId: string;
  eventName: string;
  value: string;
  windowStart: Date;
  windowEnd: Date;
  eventAt: Date;
  periodStart: Date | null;
  periodEnd: Date | null;
  rowIds: number[];
  /** The v2 stream batch it is sent in (report-batches.ts); undefined: its own job. */
  batchId?: number;
}

/** The usage_reports row of a planned report; `overrides` sets a quarantined report apart. */
export function reportRow(p: PlannedReport, overrides: Record<string, unknown> = {}) {
  return {
    id: p.id,
    customer_id: p.customerId,
    event_name: p.eventName,
    value: p.value,
    window_start: p.windowStart,
    window_end: p.windowEnd,
    event_at: p.eventAt,
    period_start: p.periodStart,
    period_end: p.periodEnd,
    identifier: reportIdentifier({ ...p, reportId: p.id }),
    batch_id: p.batchId ?? null,
    ...overrides,
  };
}

const REPORTS_PER_INSERT = 1_000;

/** Inserts pending reports and points their rows at them. Shares `trx` with the claim (outbox). */
export async function writeReports(trx: Knex.Transaction, planned: readonly PlannedReport[]): Promise<void> {
  if (planned.length === 0) return;
  // Chunked: one INSERT may bind at most 65,535 parameters (about 6,500 reports of 10 columns).
  for (let i = 0; i < planned.length; i += REPORTS_PER_INSERT)
    await trx("usage_reports").insert(planned.slice(i, i + REPORTS_PER_INSERT).map((p) => reportRow(p)));
  await markRows(trx, planned);
}

/**
 * Points every planned row at its report; only rows still unreported, so a claim never moves twice.
 * Every row lies in its report's window, so the windows' span bounds the rows' times: the planner
 * then reads only the ledger partitions of those months (usually one), not all of them.
 */
export async function markRows(trx: Knex.Transaction, planned: readonly PlannedReport[]): Promise<void> {
  if (planned.length === 0) return;
  const from = planned.reduce((t, p) => Math.min(t, p.windowStart.getTime()), Infinity);
  const to = planned.reduce((t, p) => Math.max(t, new Date(p.windowEnd).getTime()), -Infinity);
  await trx.raw(
    `UPDATE usage_events u SET report_id = m.report_id
     FROM unnest(?::bigint[], ?::bigint[]) AS m(id, report_id)
     WHERE u.id = m.id AND u.report_id IS NULL AND u.created_at >= ? AND u.created_at < ?`,
    [
      planned.flatMap((p) => p.rowIds),
      planned.flatMap((p) => p.rowIds.map(() => p.id)),
      new Date(from),
      new Date(to),
    ],
  );
}
