import type { Config } from "../../config.js";
import { PermanentError } from "../../errors.js";
import type { Db } from "../../platform/db.js";
import { countTokens, type Metrics } from "../../platform/metrics.js";
import type { ChatCompletion } from "../../llm/client.js";
import type { ChatJobData } from "../../queues/queues.js";
import { recordUsage } from "./ledger.js";
import type { RowCharge } from "./charges.js";
import { listPriceMicros, type Plan } from "../pricing/plans.js";
import { providerCostMicros, resolvePrice, type TokenUsage } from "../pricing/prices.js";
import { pricedServiceTier } from "../pricing/priced-options.js";
import type { EndUserQuota, Quota } from "./quota.js";
import { afterUsage, type AfterUsageDeps } from "../after-usage.js";

type Deps = AfterUsageDeps & {
  db: Db;
  plans: { get(id: string): Promise<Plan> };
  quota: Pick<Quota, "settle">;
  endUserQuota: Pick<EndUserQuota, "settle">;
  config: Config;
  metrics: Pick<Metrics, "tokens" | "modelLabel">;
};

export type ChatUsage = { tokens: TokenUsage; source: "provider" | "estimated" };

/**
 * Prices a chat's usage, writes its one usage row (unique request id) — with the answer, when the
 * chat is kept (keyed or async), in the same transaction — pays it (credits, src/billing/ledger/
 * paid-rows.ts) and settles its quota, end-user and credit holds, for the plain and the streaming path alike.
 * Returns whether this call inserted the row, and the completion carrying its cost (`usage.cost`).
 */
export async function billChat(
  deps: Deps,
  data: ChatJobData,
  completion: ChatCompletion,
  usage: ChatUsage,
): Promise<{ inserted: boolean; billableTokens: number; completion: ChatCompletion; charge: RowCharge }> {
  const plan = await deps.plans.get(data.planId);
  // The provider's answered model (often a dated snapshot) prices the row when the table knows it.
  const answeredModel = completion.model;
  const price =
    (answeredModel && resolvePrice(answeredModel, undefined)) ||
    resolvePrice(data.request.model, deps.config.defaultModelPrice);
  // Validated at the API: only a price removed since then gets here, and no retry brings it back.
  if (!price) throw new PermanentError(`no price for model ${data.request.model}`, 500, "server_error");
  const billableTokens = usage.tokens.promptTokens + usage.tokens.completionTokens;
  const keepS = data.keepS;
  const outcome = keepS
    ? (charge: RowCharge) => ({
        requestId: data.requestId,
        customerId: data.customerId,
        keepS,
        status: "succeeded" as const,
        response: costedCompletion(completion, usage.tokens, charge),
      })
    : undefined;
  const { inserted, charge } = await recordUsage(
    deps.db,
    {
      requestId: data.requestId,
      customerId: data.customerId,
      model: data.request.model,
      ...usage.tokens,
      billableTokens,
      providerCostMicros: providerCostMicros(
        usage.tokens,
        price,
        pricedServiceTier(completion.service_tier, data.request.service_tier),
      ),
      priceMicros: listPriceMicros(plan, billableTokens),
      source: usage.source,
      planId: plan.id,
      pricing: plan,
      priceModel: price.model,
      ...(data.endUser === undefined ? {} : { endUser: data.endUser }),
    },
    outcome,
  );
  // After the row, keyed by request id: a retry that finds the row already written still settles,
  // and a second settle of the same request changes nothing.
  if (data.quota) await deps.quota.settle(data.customerId, data.requestId, data.quota, billableTokens);
  if (data.endUserQuota && data.endUser !== undefined) {
    const scope = { customerId: data.customerId, endUser: data.endUser };
    await deps.endUserQuota.settle(scope, data.requestId, data.endUserQuota, billableTokens);
  }
  if (data.credits) await deps.creditCounter.settle(data.customerId, data.requestId, charge.creditMicros);
  else if (inserted) await deps.creditCounter.adjust(data.customerId, -charge.creditMicros);
  if (inserted)
    countTokens(deps.metrics, { model: data.request.model, source: usage.source, ...usage.tokens });
  await afterUsage(deps, data.customerId);
  return { inserted, billableTokens, completion: costedCompletion(completion, usage.tokens, charge), charge };
}

/**
 * The completion as the client gets it: `usage` (the provider's, or the estimate it was billed on)
 * with `cost`, what this request adds to the customer's bill in USD, and `cost_details` in micros:
 * what credits paid, what goes on the invoice, and what is left of the balance and the allowance.
 */
export function costedCompletion(
  completion: ChatCompletion,
  tokens: TokenUsage,
  charge: RowCharge,
): ChatCompletion {
  const usage = completion.usage ?? {
    prompt_tokens: tokens.promptTokens,
    completion_tokens: tokens.completionTokens,
    total_tokens: tokens.promptTokens + tokens.completionTokens,
  };
  const details: CostDetails = {
    charge_micros: charge.chargeMicros,
    credits_micros: charge.creditMicros,
    invoiced_micros: charge.chargeMicros - charge.creditMicros,
    ...(charge.creditBalanceMicros === null ? {} : { credit_balance_micros: charge.creditBalanceMicros }),
    ...(charge.allowanceRemainingTokens === null
      ? {}
      : { allowance_remaining_tokens: charge.allowanceRemainingTokens }),
  };
  const costed = { ...usage, cost: charge.chargeMicros / 1_000_000, cost_details: details };
  return { ...completion, usage: costed as ChatCompletion["usage"] & object };
}

/** `usage.cost_details` of a costed completion. */
export interface CostDetails {
  charge_micros: number;
  credits_micros: number;
  invoiced_micros: number;
  credit_balance_micros?: number;
  allowance_remaining_tokens?: number;
}
