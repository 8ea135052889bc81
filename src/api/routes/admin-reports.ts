import { Router } from "express";
import { z } from "zod";
import type { Deps } from "../../deps.js";
import { HttpError, notFound } from "../../errors.js";
import { parseInput, positiveIdParams } from "../input.js";
import { retryFailedReports, retryReport } from "../../billing/reporting/report-retry.js";
import { flushUsage } from "../../billing/reporting/usage-flush.js";
import { listReports, REPORT_STATUSES, type ReportStatus } from "../../billing/reporting/usage-reports.js";

const reportParams = positiveIdParams("Usage report ids are positive integers.");
const LIMIT = "limit must be an integer from 1 to 1000";
const listQuery = z.object({
  status: z
    .string()
    .optional()
    .refine((v) => v === undefined || REPORT_STATUSES.includes(v as ReportStatus), {
      message: `status must be one of ${REPORT_STATUSES.join(", ")}`,
      params: { code: "invalid_status" },
    })
    .transform((v) => v as ReportStatus | undefined),
  limit: z
    .string()
    .optional()
    .refine((v) => v === undefined || (/^\d{1,4}$/.test(v) && +v >= 1 && +v <= 1_000), {
      message: LIMIT,
      params: { code: "invalid_limit" },
    })
    .transform((v) => (v === undefined ? 100 : Number(v))),
  customer: z.string().optional(),
});

/** Usage reports for operators, mounted under the authenticated /admin. */
export function adminReportRoutes(
  deps: Pick<Deps, "db" | "queues" | "config" | "logger" | "metrics">,
): Router {
  const router = Router();

  router.get("/reports", async (req, res) => {
    const { status, limit, customer } = parseInput(listQuery, req.query);
    const data = await listReports(deps.db, { status, customerId: customer, limit });
    res.json({ object: "list", data });
  });

  router.post("/reports/retry-failed", async (_req, res) => {
    const results = await retryFailedReports(deps.db, deps.queues.stripeReport);
    res.json({ object: "list", data: results });
  });

  router.post("/reports/:id/retry", async (req, res) => {
    const { id } = parseInput(reportParams, req.params);
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
