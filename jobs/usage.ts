import { UnrecoverableError, type Job } from "bullmq";
import type { Db } from "../src/platform/db.js";
import type { Logger } from "../src/platform/logger.js";
import { countTokens, type Metrics } from "../src/platform/metrics.js";
import { recordUsageRows, type UsageRow } from "../src/billing/ledger/ledger.js";
import { billingPeriod } from "../src/billing/ledger/periods.js";
import { listPriceMicros, type Plan } from "../src/billing/pricing/plans.js";
import { providerCostMicros, resolvePrice } from "../src/billing/pricing/prices.js";
import type { EndUserQuota, Quota } from "../src/billing/ledger/quota.js";
import type { UsageJobData } from "../src/queues/queues.js";
import { afterUsage, type AfterUsageDeps } from "../src/billing/after-usage.js";

type Deps = AfterUsageDeps & {
  db: Db;
  logger: Logger;
  plans: { get(id: string): Promise<Plan> };
  quota: Pick<Quota, "add">;
  endUserQuota: Pick<EndUserQuota, "add">;
  metrics: Pick<Metrics, "tokens" | "modelLabel">;
};

/** Writes one accepted batch of ingested usage events as usage rows, each at most once. */
export function createUsageProcessor(deps: Deps) {
  return async (data: UsageJobData, job: Job): Promise<{ inserted: number }> => {
    const plan = await deps.plans.get(data.planId);
    const rows = data.events.map((event): UsageRow => {
      const createdAt = new Date(event.timestamp);
      const price = resolvePrice(event.model, deps.config.defaultModelPrice, createdAt);
      // Validated at the API; only a price removed since then gets here. Redrive once it is back.
      if (!price) throw new UnrecoverableError(`no price for model ${event.model}`);
      const billableTokens = event.promptTokens + event.completionTokens;
      return {
        requestId: event.requestId,
        customerId: data.customerId,
        model: event.model,
        promptTokens: event.promptTokens,
        cachedTokens: event.cachedTokens,
        cacheWriteTokens: event.cacheWriteTokens,
        completionTokens: event.completionTokens,
        reasoningTokens: event.reasoningTokens,
        billableTokens,
        providerCostMicros: providerCostMicros(event, price),
        priceMicros: listPriceMicros(plan, billableTokens),
        source: "ingested",
        planId: plan.id,
        pricing: plan,
        priceModel: price.model,
        createdAt,
        ...(event.endUser ? { endUser: event.endUser } : {}),
      };
    });
    const inserted = await recordUsageRows(deps.db, rows);
    const insertedIds = new Set(inserted.map((r) => r.requestId));
    for (const row of rows) if (insertedIds.has(row.requestId)) countTokens(deps.metrics, row);

    // Only rows this attempt inserted count toward the quota counter, so a retry adds nothing twice.
    const period = await billingPeriod(deps.db, data.customerId);
    const current = inserted.filter((r) => r.createdAt >= period.start && r.createdAt < period.end);
    await deps.quota.add(data.customerId, period, sumTokens(current));
    // And toward each end user's limit counter, where one is held.
    for (const endUser of new Set(current.map((r) => r.endUser))) {
      const tokens = sumTokens(current.filter((r) => r.endUser === endUser));
      if (endUser) await deps.endUserQuota.add({ customerId: data.customerId, endUser }, period, tokens);
    }
    // What credits paid for these rows leaves the real-time balance too (rows a retry finds written
    // were counted by the attempt that wrote them).
    const paid = inserted.reduce((sum, r) => sum + r.charge.creditMicros, 0);
    await deps.creditCounter.adjust(data.customerId, -paid);
    await afterUsage(deps, data.customerId);
    deps.logger.info(
      { jobId: job.id, customerId: data.customerId, events: rows.length, inserted: inserted.length },
      "usage events ingested",
    );
    return { inserted: inserted.length };
  };
}

const sumTokens = (rows: ReadonlyArray<{ billableTokens: number }>) =>
  rows.reduce((sum, r) => sum + r.billableTokens, 0);
