import { Router } from "express";
import { z } from "zod";
import type { Deps } from "../../deps.js";
import { HttpError, badRequest, notFound } from "../../errors.js";
import { jsonBody, parseInput } from "../input.js";
import {
  alertRuleInputSchema,
  createAlertRule,
  deleteAlertRule,
  listAlertRules,
  type CreateRuleRefusal,
} from "../../billing/alerts/rules.js";
import { listFiredAlerts } from "../../billing/alerts/fired.js";
import { billingPeriod } from "../../billing/ledger/periods.js";

const rulesQuery = z.object({
  plan_id: z.string().min(1).optional(),
  customer_id: z.string().min(1).optional(),
});

/** A refused creation as the API answers it: the missing owner is the field's fault, a duplicate a conflict. */
function refusal(reason: CreateRuleRefusal, input: { plan_id?: string; customer_id?: string }): HttpError {
  if (reason === "unknown_plan") return badRequest(`No plan ${input.plan_id}.`, "unknown_plan", "plan_id");
  if (reason === "unknown_customer")
    return badRequest(`No customer ${input.customer_id}.`, "unknown_customer", "customer_id");
  return new HttpError(
    409,
    "The same rule (owner, kind and threshold) exists already.",
    "invalid_request_error",
    "rule_exists",
  );
}

/** Alert rules and the alerts they fired, for operators, under the authenticated /admin. */
export function adminAlertRoutes(deps: Pick<Deps, "db" | "logger">): Router {
  const router = Router();

  router.post("/alert-rules", async (req, res) => {
    const input = parseInput(jsonBody(alertRuleInputSchema), req.body);
    const created = await createAlertRule(deps.db, input);
    if ("refused" in created) throw refusal(created.refused, input);
    deps.logger.info({ ruleId: created.rule.id, kind: created.rule.kind }, "alert rule created");
    res.status(201).json({ object: "alert_rule", ...created.rule });
  });

  router.get("/alert-rules", async (req, res) => {
    const filter = parseInput(rulesQuery, req.query);
    const data = await listAlertRules(deps.db, { planId: filter.plan_id, customerId: filter.customer_id });
    res.json({ object: "list", data });
  });

  router.delete("/alert-rules/:id", async (req, res) => {
    const id = String(req.params.id);
    if (!(await deleteAlertRule(deps.db, id))) throw notFound(`No alert rule ${id}.`);
    res.json({ object: "alert_rule", id, deleted: true });
  });

  // The alerts fired for the customer in its current period.
  router.get("/customers/:id/alerts", async (req, res) => {
    const customerId = String(req.params.id);
    if (!(await deps.db("customers").where({ id: customerId }).first("id")))
      throw notFound(`No customer ${customerId}.`);
    const period = await billingPeriod(deps.db, customerId);
    res.json({ object: "list", data: await listFiredAlerts(deps.db, customerId, period) });
  });

  return router;
}
