import type { WebDeps } from "../../deps.js";
import { listAlertsFiredSince } from "../../billing/alerts/fired.js";
import { creditBalances } from "../../billing/credits/balance.js";
import { listCustomers } from "../../billing/customers/customers.js";
import { usageOverTime, type UsagePoint } from "../../billing/ledger/hourly-usage.js";
import { calendarMonth } from "../../billing/ledger/periods.js";
import { profitability } from "../../billing/pricing/profitability.js";
import { reportingHealth } from "../../billing/reporting/report-health.js";
import { listDeadLetters } from "../../queues/dead-letters.js";

type Deps = Pick<WebDeps, "db" | "queues">;

const HOUR_MS = 3_600_000;
/** The hourly plot's window and the daily plot's, ending with the current hour / day. */
export const HOURLY_WINDOW_HOURS = 48;
export const DAILY_WINDOW_DAYS = 30;

/** Usage points pivoted for a plot: one x per bucket, one series per model (tokens) and requests. */
export function pivot(points: readonly UsagePoint[]) {
  const xs = [...new Set(points.map((p) => p.at.getTime()))].sort((a, b) => a - b);
  const index = new Map(xs.map((x, i) => [x, i]));
  const models = [...new Set(points.map((p) => p.model))].sort();
  const tokens = models.map((model) => ({ model, values: xs.map(() => 0) }));
  const requests = xs.map(() => 0);
  for (const p of points) {
    const i = index.get(p.at.getTime())!;
    tokens[models.indexOf(p.model)]!.values[i]! += p.billableTokens;
    requests[i]! += p.requests;
  }
  return { xs: xs.map((x) => x / 1000), tokens, requests };
}

/** Each queue's job counts and the share of finished jobs that failed (of the jobs BullMQ keeps). */
async function queueStats(queues: Deps["queues"]) {
  return Promise.all(
    queues.all.map(async (q) => {
      const c = await q.getJobCounts("waiting", "active", "delayed", "prioritized", "failed", "completed");
      const finished = (c.failed ?? 0) + (c.completed ?? 0);
      return {
        queue: q.name,
        depth: (c.waiting ?? 0) + (c.active ?? 0) + (c.delayed ?? 0) + (c.prioritized ?? 0),
        counts: c,
        failure_rate: finished === 0 ? 0 : (c.failed ?? 0) / finished,
      };
    }),
  );
}

/**
 * Every figure of the operator dashboard, from the queries the API and CLI use: usage over time
 * (hourly rollup), profitability this month, Stripe reporting, dead letters and queues, credits and
 * alerts. `customerId` narrows the usage plots to one customer.
 */
export async function dashboardData(
  deps: Deps,
  opts: { customerId?: string; targetHundredths: number; now?: Date },
) {
  const now = opts.now ?? new Date();
  const nextHour = new Date(Math.floor(now.getTime() / HOUR_MS) * HOUR_MS + HOUR_MS);
  const hourly = { start: new Date(nextHour.getTime() - HOURLY_WINDOW_HOURS * HOUR_MS), end: nextHour };
  const nextDay = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate() + 1));
  const daily = { start: new Date(nextDay.getTime() - DAILY_WINDOW_DAYS * 24 * HOUR_MS), end: nextDay };
  const month = calendarMonth(now);
  const [hours, days, margins, reporting, deadLetters, queues, credits, alerts, customers] =
    await Promise.all([
      usageOverTime(deps.db, hourly, { bucket: "hour", customerId: opts.customerId }),
      usageOverTime(deps.db, daily, { bucket: "day", customerId: opts.customerId }),
      profitability(deps.db, month, opts.targetHundredths),
      reportingHealth(deps.db),
      listDeadLetters(deps.db, { status: "open", limit: 50 }),
      queueStats(deps.queues),
      creditBalances(deps.db),
      listAlertsFiredSince(deps.db, daily.start, 50),
      listCustomers(deps.db),
    ]);
  return {
    generated_at: now.toISOString(),
    customer: opts.customerId ?? null,
    customers: customers.map((c) => ({ id: c.id, name: c.name })),
    usage: { hourly: pivot(hours), daily: pivot(days) },
    profitability: {
      period: { start: month.start.toISOString(), end: month.end.toISOString() },
      target: opts.targetHundredths / 100,
      rows: margins,
    },
    reporting: {
      ...reporting,
      lag_seconds: reporting.oldestPendingAt
        ? Math.round((now.getTime() - reporting.oldestPendingAt.getTime()) / 1000)
        : 0,
    },
    dead_letters: deadLetters.map((d) => ({
      id: d.id,
      queue: d.queue,
      job_id: d.job_id,
      reason: d.reason,
      attempts: d.attempts,
      failed_at: d.failed_at,
      redrive_count: d.redrive_count,
      redriven_at: d.redriven_at,
    })),
    queues,
    credits,
    alerts,
  };
}

export type DashboardData = Awaited<ReturnType<typeof dashboardData>>;
