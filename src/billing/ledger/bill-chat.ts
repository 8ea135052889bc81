import type { Config } from "../../config.js";
import { PermanentError } from "../../errors.js";
import type { Db } from "../../platform/db.js";
import { countTokens, type Metrics } from "../../platform/metrics.js";
import type { ChatCompletion } from "../../llm/client.js";
import type { ChatJobData } from "../../queues/queues.js";
import { recordUsage } from "./ledger.js";
import { listPriceMicros, type Plan } from "../pricing/plans.js";
import { providerCostMicros, resolvePrice, type TokenUsage } from "../pricing/prices.js";
import type { Quota } from "./quota.js";
import { afterUsage, type AfterUsageDeps } from "../after-usage.js";

type Deps = AfterUsageDeps & {
  db: Db;
  plans: { get(id: string): Promise<Plan> };
  quota: Pick<Quota, "settle">;
  config: Config;
  metrics: Pick<Metrics, "tokens" | "modelLabel">;
};

export type ChatUsage = { tokens: TokenUsage; source: "provider" | "estimated" };

/**
 * Prices a chat's usage, writes its one usage row (unique request id) — with the answer, when the
 * chat is kept (keyed or async), in the same transaction — and settles its quota hold, for the plain
 * and the streaming path alike. Returns whether this call inserted the row.
 */
export async function billChat(
  deps: Deps,
  data: ChatJobData,
  completion: ChatCompletion,
  usage: ChatUsage,
): Promise<{ inserted: boolean; billableTokens: number }> {
  const plan = await deps.plans.get(data.planId);
  // The provider's answered model (often a dated snapshot) prices the row when the table knows it.
  const answeredModel = completion.model;
  const price =
    (answeredModel && resolvePrice(answeredModel, undefined)) ||
    resolvePrice(data.request.model, deps.config.defaultModelPrice);
  // Validated at the API: only a price removed since then gets here, and no retry brings it back.
  if (!price) throw new PermanentError(`no price for model ${data.request.model}`, 500, "server_error");
  const billableTokens = usage.tokens.promptTokens + usage.tokens.completionTokens;
  const outcome = data.keepS
    ? {
        requestId: data.requestId,
        customerId: data.customerId,
        keepS: data.keepS,
        status: "succeeded" as const,
        response: completion,
      }
    : undefined;
  const inserted = await recordUsage(
    deps.db,
    {
      requestId: data.requestId,
      customerId: data.customerId,
      model: data.request.model,
      ...usage.tokens,
      billableTokens,
      providerCostMicros: providerCostMicros(usage.tokens, price),
      priceMicros: listPriceMicros(plan, billableTokens),
      source: usage.source,
      planId: plan.id,
      priceModel: price.model,
    },
    outcome,
  );
  // After the row, keyed by request id: a retry that finds the row already written still settles,
  // and a second settle of the same request changes nothing.
  if (data.quota) await deps.quota.settle(data.customerId, data.requestId, data.quota, billableTokens);
  if (inserted)
    countTokens(deps.metrics, { model: data.request.model, source: usage.source, ...usage.tokens });
  await afterUsage(deps, data.customerId);
  return { inserted, billableTokens };
}
