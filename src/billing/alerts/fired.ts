import type { Db } from "../../platform/db.js";
import type { Period } from "../ledger/periods.js";
import type { AlertKind } from "./rules.js";

/** One alert fired for a customer in a period, as GET /v1/usage and alerts:fired show it. */
export interface FiredAlert {
  id: string;
  ruleId: string;
  kind: AlertKind;
  threshold: number;
  value: number;
  firedAt: Date;
  recoveredAt: Date | null;
  recoveredValue: number | null;
  periodStart: Date;
  periodEnd: Date;
}

/** The `alert_firings` columns of a FiredAlert besides its id. */
const FIRED_COLUMNS = [
  "rule_id as ruleId",
  "kind",
  "threshold",
  "value",
  "fired_at as firedAt",
  "recovered_at as recoveredAt",
  "recovered_value as recoveredValue",
  "period_start as periodStart",
  "period_end as periodEnd",
];

/** The alerts fired for the customer in the period (recovered ones included), oldest first. */
export async function listFiredAlerts(db: Db, customerId: string, period: Period): Promise<FiredAlert[]> {
  return db("alert_firings")
    .where({ customer_id: customerId, period_start: period.start })
    .orderBy([{ column: "fired_at" }, { column: "id" }])
    .select("id", ...FIRED_COLUMNS);
}

/** Alerts fired since `since` for every customer, newest first, at most `limit`. */
export async function listAlertsFiredSince(
  db: Db,
  since: Date,
  limit = 100,
): Promise<Array<FiredAlert & { customerId: string }>> {
  return db("alert_firings")
    .where("fired_at", ">=", since)
    .orderBy([
      { column: "fired_at", order: "desc" },
      { column: "id", order: "desc" },
    ])
    .limit(limit)
    .select("id", "customer_id as customerId", ...FIRED_COLUMNS);
}
