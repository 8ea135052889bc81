import type { Config } from "../config.js";
import type { Db } from "../platform/db.js";
import type { Logger } from "../platform/logger.js";
import type { Queues } from "../queues/queues.js";
import type { StripeClient } from "./reporting/stripe-client.js";
import type { CreditCounter } from "./credits/counter.js";
import type { Plan } from "./pricing/plans.js";
import { evaluateAlerts } from "./alerts/evaluate.js";
import { maybeAutoTopUp } from "./credits/top-ups.js";

export type AfterUsageDeps = {
  config: Config;
  db: Db;
  logger: Logger;
  queues: Pick<Queues, "webhookDelivery">;
  plans: { get(id: string): Promise<Plan> };
  creditCounter: CreditCounter;
  stripe: StripeClient | undefined;
};

/**
 * What follows a customer's usage being written (a chat's row, a batch of ingested rows): the
 * checks that depend on the new totals. It runs after every attempt that reaches the ledger, also
 * when the rows were already written by an earlier attempt that died before getting here, so each
 * step must be idempotent (keyed by customer and period, or by its own reference). An error fails
 * the job, whose retry runs it again.
 */
export async function afterUsage(deps: AfterUsageDeps, customerId: string): Promise<void> {
  await maybeAutoTopUp(deps, customerId);
  await evaluateAlerts(deps, customerId);
}
