import type { Deps } from "../deps.js";
import { seedDefaultPlans } from "../billing/pricing/plans.js";
import { previousUtcDay, reconcileDay } from "../billing/reporting/reconcile.js";
import { retryFailedReports, retryReport } from "../billing/reporting/report-retry.js";
import type { StripeClient } from "../billing/reporting/stripe-client.js";
import { setupStripe } from "../billing/reporting/stripe-setup.js";
import { flushUsage } from "../billing/reporting/usage-flush.js";
import { listReports, REPORT_STATUSES, type ReportStatus } from "../billing/reporting/usage-reports.js";
import { optionalFlag, type CliContext } from "./context.js";
import { NotFoundError, UsageError } from "../errors.js";

function requireStripe(deps: Deps): StripeClient {
  if (!deps.stripe)
    throw new UsageError("STRIPE_SECRET_KEY is not set (and STRIPE_API_BASE for a local emulator)");
  return deps.stripe;
}

export async function reportsList(ctx: CliContext): Promise<void> {
  const status = optionalFlag(ctx, "status") ?? (ctx.flags.failed === true ? "failed" : undefined);
  if (status !== undefined && !REPORT_STATUSES.includes(status as ReportStatus)) {
    throw new UsageError(`--status must be one of ${REPORT_STATUSES.join(", ")}`);
  }
  const reports = await listReports(ctx.db(), {
    status: status as ReportStatus | undefined,
    customerId: optionalFlag(ctx, "customer"),
    limit: Number(optionalFlag(ctx, "limit") ?? 100),
  });
  const lines = reports.map(
    (r) =>
      `${String(r.id).padStart(8)}  ${r.status.padEnd(7)}  ${r.customerId}  ${String(r.value).padStart(10)}  ` +
      `${r.windowStart.toISOString()}  attempts=${r.attempts}${r.lastError ? `  ${r.lastError}` : ""}`,
  );
  ctx.print(lines.length ? lines.join("\n") : "no reports", reports);
}

export async function reportsRetry(ctx: CliContext): Promise<void> {
  const id = ctx.args[0];
  if (ctx.flags.failed !== true && (id === undefined || !/^\d+$/.test(id))) {
    throw new UsageError("give a report id or --failed");
  }
  const deps = ctx.deps();
  if (ctx.flags.failed === true) {
    const results = await retryFailedReports(deps.db, deps.queues.stripeReport);
    ctx.print(
      results.length ? results.map((r) => `report ${r.id}: ${r.outcome}`).join("\n") : "no failed reports",
      results,
    );
    return;
  }
  const outcome = await retryReport(deps.db, deps.queues.stripeReport, Number(id));
  if (outcome === "not-found") throw new NotFoundError(`no usage report ${id}`);
  ctx.print(`report ${id}: ${outcome}`, { id: Number(id), outcome });
}

export async function usageFlush(ctx: CliContext): Promise<void> {
  const customerId = optionalFlag(ctx, "customer");
  const deps = ctx.deps();
  const result = await flushUsage(deps, { customerId });
  const waiting = result.unlinked.map(
    (u) => `  ${u.customerId}: ${u.rows} rows wait (no Stripe customer id)`,
  );
  ctx.print(
    [`flushed ${result.rows} usage rows into ${result.reports.length} reports`, ...waiting].join("\n"),
    result,
  );
}

export async function reconcile(ctx: CliContext): Promise<void> {
  const day = optionalFlag(ctx, "date") ?? previousUtcDay();
  if (!/^\d{4}-\d{2}-\d{2}$/.test(day)) throw new UsageError("--date must be YYYY-MM-DD");
  const deps = ctx.deps();
  const results = await reconcileDay({ ...deps, stripe: requireStripe(deps) }, day);
  const lines = results.map(
    (r) =>
      `${r.customerId} (${r.stripeCustomerId}): sent ${r.sentValue}, Stripe ${r.stripeValue}, drift ${r.drift}`,
  );
  ctx.print(
    [`reconciliation for ${day}:`, ...(lines.length ? lines : ["  nothing sent that day"])].join("\n"),
    results,
  );
  if (results.some((r) => r.drift !== 0)) ctx.exitCode = 3;
}

export async function stripeSetup(ctx: CliContext): Promise<void> {
  const deps = ctx.deps();
  await seedDefaultPlans(deps.db);
  const setup = await setupStripe({ ...deps, stripe: requireStripe(deps) });
  const lines = [
    `meter ${setup.meter.id} (event_name ${setup.meter.eventName})${setup.meter.created ? " created" : ""}`,
    ...setup.plans.flatMap((p) => [
      `plan ${p.planId}: product ${p.productId}`,
      ...Object.entries(p.prices).map(
        ([role, price]) =>
          `  ${role} price ${price.id} (lookup_key ${price.lookupKey})${price.created ? " created" : ""}`,
      ),
    ]),
    "price ids are stored in plans.stripe_price_ids; STRIPE_METER_EVENT_NAME must stay " +
      setup.meter.eventName,
  ];
  ctx.print(lines.join("\n"), setup);
}

export const reportCommands = {
  "reports:list": {
    run: reportsList,
    usage: "reports:list [--status pending|sent|failed] [--customer <id>] [--limit <n>]",
  },
  "reports:retry": { run: reportsRetry, usage: "reports:retry <report id> | --failed" },
  "usage:flush": { run: usageFlush, usage: "usage:flush [--customer <customer id>]" },
  reconcile: { run: reconcile, usage: "reconcile [--date YYYY-MM-DD]" },
  "stripe:setup": { run: stripeSetup, usage: "stripe:setup" },
};
