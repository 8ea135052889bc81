import { randomBytes } from "node:crypto";
import type { Config } from "../../config.js";
import type { Db } from "../../platform/db.js";
import type { Logger } from "../../platform/logger.js";
import type { Queues } from "../../queues/queues.js";
import { enqueuePublished, pendingDeliveryIds, writeEvent } from "../../notifications/publish.js";
import { creditBalance } from "../credits/balance.js";
import { billingPeriod, type Period } from "../ledger/periods.js";
import { recordedTokens } from "../ledger/quota.js";
import { periodCharge } from "../pricing/period-charge.js";
import type { Plan } from "../pricing/plans.js";
import { alertEventTypes, alertEventData, type Measured } from "./events.js";
import { createAlertRuleCache, isShareKind, type AlertRule, type AlertRuleCache } from "./rules.js";

export type AlertDeps = {
  config: Pick<Config, "alertRulesCacheMs">;
  db: Db;
  logger: Logger;
  queues: Pick<Queues, "webhookDelivery">;
  plans: { get(id: string): Promise<Plan> };
};

/** A firing as evaluation reads it: the one row of (rule, customer, period). */
type FiringRow = {
  id: string;
  rule_id: string;
  recovered_at: Date | null;
  unsent_event_id: string | null;
};

// One rule cache per database handle, i.e. per process's composition root.
const caches = new WeakMap<Db, AlertRuleCache>();
function ruleCache(deps: AlertDeps): AlertRuleCache {
  let cache = caches.get(deps.db);
  if (!cache) caches.set(deps.db, (cache = createAlertRuleCache(deps.db, deps.config.alertRulesCacheMs)));
  return cache;
}

/**
 * Checks the customer's alert rules against its current period, after its usage was written. Each
 * (rule, customer, period) fires at most once (UNIQUE firing row, ON CONFLICT DO NOTHING) and
 * recovers at most once when its condition clears; the event of each change is written in the
 * change's transaction and enqueued after the commit. Idempotent, so a retried job may run it again.
 * No rule for the customer: no query at all (rules cached); otherwise two rounds of indexed reads.
 */
export async function evaluateAlerts(deps: AlertDeps, customerId: string): Promise<void> {
  const { db } = deps;
  const all = await ruleCache(deps).all();
  if (!all.some((r) => r.planId !== null || r.customerId === customerId)) return;
  // Read together: the period is wasted only when the customer's plan has no rule after all.
  const [customer, period] = await Promise.all([
    db("customers").where({ id: customerId }).first<{ plan_id: string } | undefined>("plan_id"),
    billingPeriod(db, customerId),
  ]);
  const rules = all.filter((r) => r.customerId === customerId || r.planId === customer?.plan_id);
  if (!customer || rules.length === 0) return;
  const [measured, firings] = await Promise.all([
    measure(deps, customerId, customer.plan_id, period, rules),
    firingsOf(db, customerId, period, rules),
  ]);
  for (const rule of rules) await applyRule(deps, rule, customerId, period, valueOf(rule, measured), firings);
}

/**
 * After a grant, a void or a top-up changed a customer's credit balance outside its usage: balance
 * rules fire or recover now, not at the customer's next request. A failure is logged, not thrown:
 * the balance change is already committed, and the next usage evaluates the rules again.
 */
export async function evaluateBalanceAlerts(deps: AlertDeps, customerId: string): Promise<void> {
  try {
    await evaluateAlerts(deps, customerId);
  } catch (err) {
    deps.logger.warn(
      { customerId, err: (err as Error).message },
      "alerts not evaluated after a credit balance change; the customer's next usage evaluates them",
    );
  }
}

/** This period's firings of the rules for the customer, by rule id. */
async function firingsOf(
  db: Db,
  customerId: string,
  period: Period,
  rules: readonly AlertRule[],
): Promise<Map<string, FiringRow>> {
  const rows = await db("alert_firings")
    .where({ customer_id: customerId, period_start: period.start })
    .whereIn(
      "rule_id",
      rules.map((r) => r.id),
    )
    .select<FiringRow[]>("id", "rule_id", "recovered_at", "unsent_event_id");
  return new Map(rows.map((f) => [f.rule_id, f]));
}

/**
 * One rule's outcome: enqueue what a crash left unenqueued, then fire (condition met, no firing this
 * period) or recover (condition cleared, firing not recovered yet), or nothing.
 */
async function applyRule(
  deps: AlertDeps,
  rule: AlertRule,
  customerId: string,
  period: Period,
  value: Measured,
  firings: Map<string, FiringRow>,
): Promise<void> {
  const firing = firings.get(rule.id);
  if (firing?.unsent_event_id) await enqueueUnsent(deps, firing.id, firing.unsent_event_id);
  if (value.met && !firing) await fire(deps, rule, customerId, period, value);
  else if (!value.met && firing && !firing.recovered_at) await recover(deps, rule, firing.id, period, value);
}

/** The customer's plan, and its period's billable tokens and credit balance, each read only when a rule needs it. */
async function measure(
  deps: AlertDeps,
  customerId: string,
  planId: string,
  period: Period,
  rules: readonly AlertRule[],
): Promise<{ plan: Plan; tokens: number; balanceMicros: number }> {
  const needsTokens = rules.some((r) => r.kind !== "balance_below");
  const needsBalance = rules.some((r) => r.kind === "balance_below");
  const [plan, tokens, balanceMicros] = await Promise.all([
    deps.plans.get(planId),
    needsTokens ? recordedTokens(deps.db, customerId, period) : 0,
    needsBalance ? creditBalance(deps.db, customerId) : 0,
  ]);
  return { plan, tokens, balanceMicros };
}

/**
 * A rule's value and whether its condition holds. Shares compare exactly (tokens × 100 against
 * threshold × limit) and report the percent rounded down; a plan without an allowance or a hard
 * limit never meets a share of it.
 */
export function valueOf(
  rule: Pick<AlertRule, "kind" | "threshold">,
  m: { plan: Plan; tokens: number; balanceMicros: number },
): Measured {
  if (isShareKind(rule.kind)) {
    const limit = (rule.kind === "allowance_share" ? m.plan.includedTokens : m.plan.hardLimitTokens) ?? 0;
    if (limit <= 0) return { met: false, value: 0, usedTokens: m.tokens, limitTokens: limit };
    return {
      met: m.tokens * 100 >= rule.threshold * limit,
      value: Math.floor((m.tokens * 100) / limit),
      usedTokens: m.tokens,
      limitTokens: limit,
    };
  }
  if (rule.kind === "balance_below") return { met: m.balanceMicros < rule.threshold, value: m.balanceMicros };
  const overage = periodCharge(m.plan, m.tokens).overageMicros;
  return { met: overage > rule.threshold, value: overage, usedTokens: m.tokens };
}

const newFiringId = () => `alf_${randomBytes(12).toString("hex")}`;

/** Records the firing and its event in one transaction, unless this period's firing exists. */
async function fire(deps: AlertDeps, rule: AlertRule, customerId: string, period: Period, value: Measured) {
  const id = newFiringId();
  const eventId = `evt_alert_${id}`;
  const published = await deps.db.transaction(async (trx) => {
    const inserted = await trx("alert_firings")
      .insert({
        id,
        rule_id: rule.id,
        customer_id: customerId,
        period_start: period.start,
        period_end: period.end,
        kind: rule.kind,
        threshold: rule.threshold,
        value: value.value,
        unsent_event_id: eventId,
      })
      .onConflict(["rule_id", "customer_id", "period_start"])
      .ignore()
      .returning("id");
    if (inserted.length === 0) return undefined;
    const data = alertEventData({ firingId: id, rule, customerId, period, value });
    return writeEvent(trx, { id: eventId, type: alertEventTypes(rule.kind).reached, data });
  });
  if (!published) return;
  deps.logger.info({ customerId, ruleId: rule.id, kind: rule.kind, eventId }, "alert fired");
  if (await enqueuePublished(deps, published)) await markSent(deps.db, id, eventId);
}

/** Marks the firing recovered and writes its event in one transaction, once. */
async function recover(deps: AlertDeps, rule: AlertRule, firingId: string, period: Period, value: Measured) {
  const eventId = `evt_alert_${firingId}_recovered`;
  const published = await deps.db.transaction(async (trx) => {
    const updated = await trx("alert_firings")
      .where({ id: firingId })
      .whereNull("recovered_at")
      .update({ recovered_at: trx.fn.now(), recovered_value: value.value, unsent_event_id: eventId })
      .returning("customer_id");
    if (updated.length === 0) return undefined;
    const customerId = updated[0].customer_id as string;
    const data = alertEventData({ firingId, rule, customerId, period, value });
    return writeEvent(trx, { id: eventId, type: alertEventTypes(rule.kind).recovered, data });
  });
  if (!published) return;
  deps.logger.info({ firingId, ruleId: rule.id, kind: rule.kind, eventId }, "alert recovered");
  if (await enqueuePublished(deps, published)) await markSent(deps.db, firingId, eventId);
}

/**
 * Enqueues the pending deliveries of a firing's event that a crashed evaluation may have left
 * unenqueued (between its commit and its enqueue). Harmless when they were: job id = delivery id.
 */
async function enqueueUnsent(deps: AlertDeps, firingId: string, eventId: string) {
  const deliveryIds = await pendingDeliveryIds(deps.db, eventId);
  if (await enqueuePublished(deps, { id: eventId, created: false, deliveryIds }))
    await markSent(deps.db, firingId, eventId);
}

async function markSent(db: Db, firingId: string, eventId: string) {
  await db("alert_firings")
    .where({ id: firingId, unsent_event_id: eventId })
    .update({ unsent_event_id: null });
}
