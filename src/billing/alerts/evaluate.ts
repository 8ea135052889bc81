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
 * No rule for the customer: no query at all, or one (its plan).
 */
export async function evaluateAlerts(deps: AlertDeps, customerId: string): Promise<void> {
  const rules = await rulesFor(deps, customerId);
  if (!rules) return;
  const { db } = deps;
  const [plan, period] = await Promise.all([deps.plans.get(rules.planId), billingPeriod(db, customerId)]);
  const [measured, firings] = await Promise.all([
    measure(db, customerId, plan, period, rules.list),
    db("alert_firings")
      .where({ customer_id: customerId, period_start: period.start })
      .whereIn(
        "rule_id",
        rules.list.map((r) => r.id),
      )
      .select<FiringRow[]>("id", "rule_id", "recovered_at", "unsent_event_id"),
  ]);
  const firingOf = new Map(firings.map((f) => [f.rule_id, f]));
  for (const rule of rules.list) {
    const firing = firingOf.get(rule.id);
    if (firing?.unsent_event_id) await enqueueUnsent(deps, firing.id, firing.unsent_event_id);
    const value = valueOf(rule, measured);
    if (value.met && !firing) await fire(deps, rule, customerId, period, value);
    else if (!value.met && firing && !firing.recovered_at)
      await recover(deps, rule, firing.id, period, value);
  }
}

/** The rules covering the customer (its own and its plan's) and its plan, or undefined when none do. */
async function rulesFor(
  deps: AlertDeps,
  customerId: string,
): Promise<{ planId: string; list: AlertRule[] } | undefined> {
  const all = await ruleCache(deps).all();
  if (!all.some((r) => r.planId !== null || r.customerId === customerId)) return undefined;
  const customer = await deps.db("customers").where({ id: customerId }).first("plan_id");
  if (!customer) return undefined;
  const list = all.filter((r) => r.customerId === customerId || r.planId === customer.plan_id);
  return list.length > 0 ? { planId: customer.plan_id as string, list } : undefined;
}

/** The period's billable tokens and the credit balance, each read only when a rule needs it. */
async function measure(
  db: Db,
  customerId: string,
  plan: Plan,
  period: Period,
  rules: readonly AlertRule[],
): Promise<{ plan: Plan; tokens: number; balanceMicros: number }> {
  const needsTokens = rules.some((r) => r.kind !== "balance_below");
  const needsBalance = rules.some((r) => r.kind === "balance_below");
  const [tokens, balanceMicros] = await Promise.all([
    needsTokens ? recordedTokens(db, customerId, period) : 0,
    needsBalance ? creditBalance(db, customerId) : 0,
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
