import {
  alertRuleInputSchema,
  createAlertRule,
  deleteAlertRule,
  listAlertRules,
  isShareKind,
  type AlertRule,
} from "../billing/alerts/rules.js";
import { listFiredAlerts, type FiredAlert } from "../billing/alerts/fired.js";
import { billingPeriod } from "../billing/ledger/periods.js";
import { NotFoundError, UsageError } from "../errors.js";
import { optionalFlag, requireFlag, type CliContext } from "./context.js";

const REFUSED = {
  unknown_plan: (id?: string) => new NotFoundError(`no plan "${id}"`),
  unknown_customer: (id?: string) => new NotFoundError(`no customer "${id}"`),
};

const describeThreshold = (r: Pick<AlertRule, "kind" | "threshold">, value = r.threshold) =>
  isShareKind(r.kind) ? `${value}%` : `${value} µ$`;

const describeRule = (r: AlertRule) =>
  `${r.id}\t${r.planId ? `plan ${r.planId}` : `customer ${r.customerId}`}\t${r.kind}\t${describeThreshold(r)}`;

/** alerts:add --plan <id>|--customer <id> --kind <kind> --threshold <n>: validated as the admin API's body. */
export async function alertsAdd(ctx: CliContext): Promise<void> {
  const threshold = requireFlag(ctx, "threshold");
  const parsed = alertRuleInputSchema.safeParse({
    plan_id: optionalFlag(ctx, "plan"),
    customer_id: optionalFlag(ctx, "customer"),
    kind: requireFlag(ctx, "kind"),
    threshold: /^\d{1,16}$/.test(threshold) ? Number(threshold) : threshold,
  });
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new UsageError(
      issue.path[0] === "plan_id" ? "give exactly one of --plan and --customer" : issue.message,
    );
  }
  const created = await createAlertRule(ctx.db(), parsed.data);
  if ("refused" in created) {
    if (created.refused === "rule_exists")
      throw new UsageError("the same rule exists already (see alerts:list)");
    throw REFUSED[created.refused](parsed.data.plan_id ?? parsed.data.customer_id);
  }
  ctx.print(`created alert rule ${describeRule(created.rule)}`, created.rule);
}

/** alerts:list [--plan <id>] [--customer <id>]. */
export async function alertsList(ctx: CliContext): Promise<void> {
  const rules = await listAlertRules(ctx.db(), {
    planId: optionalFlag(ctx, "plan"),
    customerId: optionalFlag(ctx, "customer"),
  });
  ctx.print(rules.length ? rules.map(describeRule).join("\n") : "no alert rules", rules);
}

/** alerts:delete <rule id>: the rule and its firings. */
export async function alertsDelete(ctx: CliContext): Promise<void> {
  const id = ctx.args[0];
  if (!id) throw new UsageError("give the rule id");
  if (!(await deleteAlertRule(ctx.db(), id))) throw new NotFoundError(`no alert rule "${id}"`);
  ctx.print(`deleted alert rule ${id}`, { id, deleted: true });
}

const describeFired = (a: FiredAlert) =>
  `${a.id}\t${a.firedAt.toISOString()}\t${a.kind}\t${describeThreshold(a)}\tat ${describeThreshold(a, a.value)}` +
  (a.recoveredAt
    ? `\trecovered ${a.recoveredAt.toISOString()} at ${describeThreshold(a, a.recoveredValue!)}`
    : "");

/** alerts:fired --customer <id>: the alerts fired in the customer's current period. */
export async function alertsFired(ctx: CliContext): Promise<void> {
  const customerId = requireFlag(ctx, "customer");
  const db = ctx.db();
  if (!(await db("customers").where({ id: customerId }).first("id")))
    throw new NotFoundError(`no customer "${customerId}"`);
  const period = await billingPeriod(db, customerId);
  const fired = await listFiredAlerts(db, customerId, period);
  ctx.print(
    fired.length
      ? fired.map(describeFired).join("\n")
      : `no alert fired for ${customerId} since ${period.start.toISOString()}`,
    fired,
  );
}
