import type { ReconcileJobData } from "../src/queues/queues.js";
import { previousUtcDay, reconcileDay } from "../src/billing/reporting/reconcile.js";

/** The scheduled `reconcile` job: yesterday (UTC) unless the job names a day. */
export function createReconcileProcessor(deps: Parameters<typeof reconcileDay>[0]) {
  return async ({ day }: ReconcileJobData) => {
    const results = await reconcileDay(deps, day ?? previousUtcDay());
    return { customers: results.length, drifting: results.filter((r) => r.drift !== 0).length };
  };
}
