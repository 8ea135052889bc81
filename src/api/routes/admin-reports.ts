import { Router, type Request } from "express";
import type { Deps } from "../../deps.js";
import { badRequest, HttpError, notFound } from "../../errors.js";
import { retryFailedReports, retryReport } from "../../billing/reporting/report-retry.js";
import { flushUsage } from "../../billing/reporting/usage-flush.js";
import { listReports, REPORT_STATUSES, type ReportStatus } from "../../billing/reporting/usage-reports.js";

const reportId = (req: Request): number => {
  const raw = String(req.params.id ?? "");
  if (!/^\d{1,15}$/.test(raw) || Number(raw) < 1)
    throw badRequest(`Invalid report id: ${raw}`, "invalid_id", "id");
  return Number(raw);
};

/** Usage reports for operators, mounted under the authenticated /admin. */
export function adminReportRoutes(
  deps: Pick<Deps, "db" | "queues" | "config" | "logger" | "metrics">,
): Router {
  const router = Router();

  router.get("/reports", async (req, res) => {
    const status = req.query.status;
    if (status !== undefined && !REPORT_STATUSES.includes(status as ReportStatus)) {
      throw badRequest(`status must be one of ${REPORT_STATUSES.join(", ")}`, "invalid_status", "status");
    }
    const limit = req.query.limit === undefined ? 100 : Number(req.query.limit);
    if (!Number.isInteger(limit) || limit < 1 || limit > 1_000) {
      throw badRequest("limit must be an integer from 1 to 1000", "invalid_limit", "limit");
    }
    const customer = typeof req.query.customer === "string" ? req.query.customer : undefined;
    const data = await listReports(deps.db, {
      status: status as ReportStatus | undefined,
      customerId: customer,
      limit,
    });
    res.json({ object: "list", data });
  });

  router.post("/reports/retry-failed", async (_req, res) => {
    const results = await retryFailedReports(deps.db, deps.queues.stripeReport);
    res.json({ object: "list", data: results });
  });

  router.post("/reports/:id/retry", async (req, res) => {
    const id = reportId(req);
    const outcome = await retryReport(deps.db, deps.queues.stripeReport, id);
    if (outcome === "not-found") throw notFound(`No usage report ${id}.`);
    res.json({ id, outcome });
  });

  // Flush before invoicing: turn this customer's unreported usage into reports and enqueue them now.
  router.post("/customers/:id/flush", async (req, res) => {
    const customerId = String(req.params.id);
    const customer = await deps.db("customers").where({ id: customerId }).first("stripe_customer_id");
    if (!customer) throw notFound(`No customer ${customerId}.`);
    if (!customer.stripe_customer_id) {
      throw new HttpError(
        409,
        `Customer ${customerId} has no Stripe customer id; its usage waits unreported until one is set.`,
        "invalid_request_error",
        "customer_not_linked",
      );
    }
    const result = await flushUsage(deps, { customerId });
    res.json({ customerId, rows: result.rows, reports: result.reports });
  });

  return router;
}
