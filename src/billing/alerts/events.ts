import type { Period } from "../ledger/periods.js";
import { isShareKind, type AlertKind, type AlertRule } from "./rules.js";

/** A rule's measured value and whether its condition holds; the share kinds also carry their tokens. */
export interface Measured {
  met: boolean;
  /** A percent (rounded down) for the share kinds, micro-dollars for the others. */
  value: number;
  usedTokens?: number;
  limitTokens?: number;
}

/** The webhook event types of a kind's firing and of its recovery. */
export function alertEventTypes(kind: AlertKind): { reached: string; recovered: string } {
  return kind === "balance_below"
    ? { reached: "credits.balance_low", recovered: "credits.balance_recovered" }
    : { reached: "usage.threshold_reached", recovered: "usage.threshold_recovered" };
}

/**
 * The `data` of an alert's event, in the API's snake_case: whom, which rule, the threshold and the
 * value measured (with their unit), and the period. `alert_id` is the firing's id, shared by the
 * reached and the recovered event.
 */
export function alertEventData(input: {
  firingId: string;
  rule: AlertRule;
  customerId: string;
  period: Period;
  value: Measured;
}) {
  const { rule, value } = input;
  return {
    alert_id: input.firingId,
    customer_id: input.customerId,
    rule: { id: rule.id, plan_id: rule.planId, customer_id: rule.customerId },
    kind: rule.kind,
    unit: isShareKind(rule.kind) ? "percent" : "micros",
    threshold: rule.threshold,
    value: value.value,
    ...(value.usedTokens !== undefined ? { used_tokens: value.usedTokens } : {}),
    ...(value.limitTokens !== undefined ? { limit_tokens: value.limitTokens } : {}),
    period: { start: input.period.start.toISOString(), end: input.period.end.toISOString() },
  };
}
