import type { Knex } from "knex";
import type { Config } from "../../config.js";
import type { Db } from "../../platform/db.js";
import type { Logger } from "../../platform/logger.js";
import type { Metrics } from "../../platform/metrics.js";
import type { Queues } from "../../queues/queues.js";
import { periodContainingSql } from "../ledger/period-history.js";
import type { PlannedReport } from "./planned-reports.js";
import { MAX_REPORT_VALUE } from "../ledger/usage-bounds.js";
import { writeIsolated, type Quarantined, type Stuck } from "./usage-quarantine.js";
import { assignBatches, batchesReports, enqueueReports } from "./report-batches.js";

export interface ClaimedReport {
  id: number;
  customerId: string;
  value: number;
  windowStart: Date;
  rows: number;
  /** The v2 stream batch that carries it (report-batches.ts); null: a job of its own. */
  batchId: number | null;
}

export interface FlushResult {
  reports: ClaimedReport[];
  rows: number;
  /** Windows set aside as failed reports with a dead letter; other customers' usage went on. */
  quarantined: Quarantined[];
  /** Customers whose usage waits because they have no Stripe customer id. */
  unlinked: Array<{ customerId: string; rows: number; tokens: number }>;
}

type Deps = {
  db: Db;
  config: Config;
  logger: Logger;
  queues: { stripeReport: Queues["stripeReport"] };
  metrics: Pick<Metrics, "usageQuarantined">;
};

/**
 * Claims unreported usage, turns it into reports and enqueues their `stripe-report` jobs: one per
 * report, or one per batch of up to 100 when they go through the v2 stream (report-batches.ts).
 * Safe to run concurrently (SKIP LOCKED) and to crash anywhere: committed reports whose job was
 * never added are picked up by the sweeper.
 */
export async function flushUsage(deps: Deps, opts: { customerId?: string } = {}): Promise<FlushResult> {
  const reports: ClaimedReport[] = [];
  const quarantined: Quarantined[] = [];
  let rows = 0;
  for (;;) {
    const batch = await deps.db.transaction((trx) => claimUsage(trx, deps.config, opts));
    // Enqueue only after commit: a job must never name a report that could still roll back.
    await enqueueReports(deps.queues.stripeReport, batch.reports);
    reports.push(...batch.reports);
    quarantined.push(...batch.quarantined);
    rows += batch.rows;
    logSetAside(deps, batch);
    const stuck = batch.stuck.reduce((n, s) => n + s.rows, 0);
    // Stuck rows are claimed again first: a batch of nothing else would loop for ever.
    if (batch.claimed < deps.config.reporting.flushBatch || batch.claimed === stuck) break;
  }
  const unlinked = await unlinkedUsage(deps.db, opts.customerId);
  for (const u of unlinked) {
    deps.logger.warn(
      { customerId: u.customerId, rows: u.rows, tokens: u.tokens },
      "usage waits unreported: the customer has no Stripe customer id; set it and the next flush reports it",
    );
  }
  if (reports.length > 0) deps.logger.info({ reports: reports.length, rows }, "usage flushed into reports");
  return { reports, rows, quarantined, unlinked };
}

function logSetAside(deps: Deps, batch: Awaited<ReturnType<typeof claimUsage>>): void {
  for (const q of batch.quarantined) {
    deps.metrics.usageQuarantined.inc({ reason: q.reason }, q.rows);
    deps.logger.error(
      { customerId: q.customerId, reportId: q.reportId, reason: q.reason, value: q.value, rows: q.rows },
      `USAGE QUARANTINED: report ${q.reportId} ${q.message}`,
    );
  }
  for (const s of batch.stuck) {
    deps.logger.error(
      { customerId: s.customerId, rows: s.rows, err: s.error },
      "usage could be neither reported nor quarantined: it stays unreported and is retried on every flush",
    );
  }
}

/**
 * One transaction: lock a batch of unreported rows of linked customers, aggregate them per customer
 * and window, insert the reports and point every row at its report. Claim, insert and mark share
 * `trx`, or a crash between them would report usage twice or lose it.
 *
 * A window is the row's UTC hour (Stripe's own summary grouping), cut at every boundary of the
 * customer's billing periods inside that hour, so a window never spans two periods and its meter
 * event (stamped with its latest row) lands in the period its rows belong to.
 *
 * One customer's data never fails the whole claim: a window whose sum cannot be reported, or a
 * customer whose reports cannot be written, is quarantined inside this same transaction.
 */
export async function claimUsage(
  trx: Knex.Transaction,
  config: Config,
  opts: { customerId?: string } = {},
): Promise<{
  reports: ClaimedReport[];
  rows: number;
  quarantined: Quarantined[];
  /** Rows that could be neither reported nor quarantined; they stay unreported. */
  stuck: Stuck[];
  claimed: number;
}> {
  const eventName = config.stripe.meterEventName;
  const { rows: groups } = await trx.raw<{
    rows: Array<{
      customer_id: string;
      window_start: Date;
      window_end: Date;
      value: string;
      event_at: Date;
      ids: string[];
      period_start: Date | null;
      period_end: Date | null;
    }>;
  }>(
    `WITH claimed AS (
       -- Tokens credits paid are never reported: Stripe invoices only the rest (src/billing/ledger/paid-rows.ts).
       SELECT u.id, u.customer_id, u.billable_tokens - u.credit_tokens AS billable_tokens, u.created_at,
              date_trunc('hour', u.created_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' AS hour
       FROM usage_events u JOIN customers c ON c.id = u.customer_id
       WHERE u.report_id IS NULL AND c.stripe_customer_id IS NOT NULL
         ${opts.customerId ? "AND u.customer_id = :customerId" : ""}
       ORDER BY u.id
       LIMIT :limit
       FOR UPDATE OF u SKIP LOCKED
     ),
     -- Looked up once per customer and hour, not per row: almost always none.
     cuts AS (
       SELECT h.customer_id, h.hour, coalesce(array_agg(b.at) FILTER (WHERE b.at IS NOT NULL), '{}') AS ats
       FROM (SELECT DISTINCT customer_id, hour FROM claimed) h
       LEFT JOIN LATERAL (
         SELECT p.period_start AS at FROM billing_periods p
         WHERE p.customer_id = h.customer_id
           AND p.period_start > h.hour AND p.period_start < h.hour + interval '1 hour'
         UNION
         SELECT p.period_end FROM billing_periods p
         WHERE p.customer_id = h.customer_id
           AND p.period_end > h.hour AND p.period_end < h.hour + interval '1 hour'
       ) b ON true
       GROUP BY 1, 2
     ),
     -- The CASE spares the per-row scans when the hour has no cut, as nearly every hour has none.
     placed AS (
       SELECT c.id, c.customer_id, c.billable_tokens, c.created_at,
              CASE WHEN k.ats = '{}' THEN c.hour
                   ELSE coalesce((SELECT max(a) FROM unnest(k.ats) a WHERE a <= c.created_at), c.hour)
              END AS window_start,
              CASE WHEN k.ats = '{}' THEN c.hour + interval '1 hour'
                   ELSE coalesce((SELECT min(a) FROM unnest(k.ats) a WHERE a > c.created_at),
                                 c.hour + interval '1 hour')
              END AS window_end
       FROM claimed c JOIN cuts k USING (customer_id, hour)
     ),
     windows AS (
       SELECT customer_id, window_start, window_end,
              -- numeric: a sum past int8 must reach the check below, not abort the flush.
              sum(billable_tokens) AS value,
              max(created_at) AS event_at,
              array_agg(id) AS ids
       FROM placed GROUP BY 1, 2, 3
     )
     SELECT w.*, p.period_start, p.period_end
     FROM windows w
     LEFT JOIN LATERAL (${periodContainingSql("w.customer_id", "w.window_start")}) p ON true
     ORDER BY w.window_start, w.customer_id`,
    { limit: config.reporting.flushBatch, ...(opts.customerId ? { customerId: opts.customerId } : {}) },
  );
  const none = { reports: [], rows: 0, quarantined: [], stuck: [], claimed: 0 };
  if (groups.length === 0) return none;

  const { rows: seq } = await trx.raw<{ rows: Array<{ id: number }> }>(
    "SELECT nextval(pg_get_serial_sequence('usage_reports', 'id')) AS id FROM generate_series(1, ?)",
    [groups.length],
  );
  const planned = groups.map((g, i): PlannedReport => ({
    id: Number(seq[i]!.id),
    customerId: g.customer_id,
    eventName,
    value: String(g.value),
    windowStart: new Date(g.window_start),
    windowEnd: g.window_end,
    eventAt: g.event_at,
    periodStart: g.period_start,
    periodEnd: g.period_end,
    rowIds: g.ids.map(Number),
  }));
  if (batchesReports(config, planned.length)) assignBatches(planned);
  const { written, quarantined, stuck } = await writeIsolated(trx, planned, MAX_REPORT_VALUE);
  return {
    reports: written.map((p) => ({
      id: p.id,
      customerId: p.customerId,
      value: Number(p.value),
      windowStart: p.windowStart,
      rows: p.rowIds.length,
      batchId: p.batchId ?? null,
    })),
    rows: written.reduce((n, p) => n + p.rowIds.length, 0),
    quarantined,
    stuck,
    claimed: planned.reduce((n, p) => n + p.rowIds.length, 0),
  };
}

async function unlinkedUsage(db: Db, customerId?: string) {
  const query = db("usage_events as u")
    .join("customers as c", "c.id", "u.customer_id")
    .whereNull("u.report_id")
    .whereNull("c.stripe_customer_id")
    .groupBy("u.customer_id")
    .select("u.customer_id")
    .count<Array<{ customer_id: string; rows: string }>>({ rows: "*" })
    .sum({ tokens: db.raw("u.billable_tokens - u.credit_tokens") })
    .limit(100);
  if (customerId) query.where("u.customer_id", customerId);
  const rows = (await query) as unknown as Array<{ customer_id: string; rows: string; tokens: string }>;
  // A figure for a log line: approximate past 2^53 and never thrown on, so it cannot fail the flush.
  return rows.map((r) => ({ customerId: r.customer_id, rows: Number(r.rows), tokens: Number(r.tokens) }));
}
