import { randomBytes } from "node:crypto";
import { z } from "zod";
import type { Db } from "../../platform/db.js";

/**
 * What an alert watches, per customer and billing period:
 * - `allowance_share`: billable tokens as a percent of the plan's included tokens;
 * - `hard_limit_share`: billable tokens as a percent of the plan's hard limit;
 * - `balance_below`: the credit balance, in micro-dollars, below the threshold;
 * - `spend_above`: the period's overage charge, in micro-dollars, above the threshold.
 */
export const ALERT_KINDS = ["allowance_share", "hard_limit_share", "balance_below", "spend_above"] as const;
export type AlertKind = (typeof ALERT_KINDS)[number];

/** Kinds whose threshold is a percent; the others' is micro-dollars. */
export const isShareKind = (kind: AlertKind) => kind === "allowance_share" || kind === "hard_limit_share";

export interface AlertRule {
  id: string;
  /** Exactly one of planId and customerId is set: the rule covers a plan's customers, or one customer. */
  planId: string | null;
  customerId: string | null;
  kind: AlertKind;
  /** A percent (share kinds) or micro-dollars (balance_below, spend_above). */
  threshold: number;
  createdAt: Date;
}

const MAX_PERCENT = 10_000;
const THRESHOLD =
  "threshold must be an integer: a percent from 1 to 10000 for allowance_share and hard_limit_share, " +
  "micro-dollars (1000000 = $1) from 0 for balance_below and spend_above.";
const OWNER = "Give exactly one of plan_id and customer_id.";

/** What creating a rule takes, for the admin API and the CLI alike (snake_case, as the API's body). */
export const alertRuleInputSchema = z
  .object({
    plan_id: z.string().min(1).max(255).optional(),
    customer_id: z.string().min(1).max(255).optional(),
    kind: z.enum(ALERT_KINDS, { error: `kind must be one of ${ALERT_KINDS.join(", ")}.` }),
    threshold: z.number(THRESHOLD).int(THRESHOLD).min(0, THRESHOLD).max(Number.MAX_SAFE_INTEGER, THRESHOLD),
  })
  .refine((r) => (r.plan_id === undefined) !== (r.customer_id === undefined), {
    message: OWNER,
    path: ["plan_id"],
    params: { code: "invalid_owner" },
  })
  .refine((r) => !isShareKind(r.kind) || (r.threshold >= 1 && r.threshold <= MAX_PERCENT), {
    message: THRESHOLD,
    path: ["threshold"],
    params: { code: "invalid_threshold" },
  });
export type AlertRuleInput = z.infer<typeof alertRuleInputSchema>;

type Row = {
  id: string;
  plan_id: string | null;
  customer_id: string | null;
  kind: AlertKind;
  threshold: number;
  created_at: Date;
};

const toRule = (row: Row): AlertRule => ({
  id: row.id,
  planId: row.plan_id,
  customerId: row.customer_id,
  kind: row.kind,
  threshold: row.threshold,
  createdAt: row.created_at,
});

/** Why a rule was not created: its plan or customer does not exist, or the same rule exists. */
export type CreateRuleRefusal = "unknown_plan" | "unknown_customer" | "rule_exists";

/** Creates a rule, or says why not (the caller turns the reason into its 400/409 or usage error). */
export async function createAlertRule(
  db: Db,
  input: AlertRuleInput,
): Promise<{ rule: AlertRule } | { refused: CreateRuleRefusal }> {
  if (input.plan_id && !(await db("plans").where({ id: input.plan_id }).first("id")))
    return { refused: "unknown_plan" };
  if (input.customer_id && !(await db("customers").where({ id: input.customer_id }).first("id")))
    return { refused: "unknown_customer" };
  try {
    const [row] = await db("alert_rules")
      .insert({
        id: `alr_${randomBytes(12).toString("hex")}`,
        plan_id: input.plan_id ?? null,
        customer_id: input.customer_id ?? null,
        kind: input.kind,
        threshold: input.threshold,
      })
      .returning<Row[]>("*");
    return { rule: toRule(row!) };
  } catch (err) {
    const { code, constraint } = err as { code?: string; constraint?: string };
    if (code === "23505" && constraint === "alert_rules_unique") return { refused: "rule_exists" };
    throw err;
  }
}

export async function listAlertRules(
  db: Db,
  filter: { planId?: string; customerId?: string } = {},
): Promise<AlertRule[]> {
  const query = db("alert_rules").orderBy([{ column: "created_at" }, { column: "id" }]);
  if (filter.planId) query.where({ plan_id: filter.planId });
  if (filter.customerId) query.where({ customer_id: filter.customerId });
  return (await query.select<Row[]>("*")).map(toRule);
}

/** Deletes a rule and its firings; false when there was none. */
export async function deleteAlertRule(db: Db, id: string): Promise<boolean> {
  return (await db("alert_rules").where({ id }).delete()) > 0;
}

/**
 * Every rule, read again at most every `ttlMs`: evaluation runs after each usage write, and most
 * deployments have a handful of rules, so a worker keeps them all in memory and skips customers no
 * rule covers without a query. A rule created or deleted takes effect within `ttlMs`.
 */
export function createAlertRuleCache(db: Db, ttlMs: number) {
  let cached: { rules: AlertRule[]; expires: number } | undefined;
  return {
    async all(): Promise<AlertRule[]> {
      if (cached && cached.expires > Date.now()) return cached.rules;
      const rules = await listAlertRules(db);
      cached = { rules, expires: Date.now() + ttlMs };
      return rules;
    },
  };
}

export type AlertRuleCache = ReturnType<typeof createAlertRuleCache>;
