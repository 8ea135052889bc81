import type { Db } from "../db.js";
import type { TokenUsage } from "./prices.js";

export interface UsageRow extends TokenUsage {
  requestId: string;
  customerId: string;
  model: string;
  billableTokens: number;
  providerCostMicros: number;
  priceMicros: number;
  source: "provider" | "estimated";
  planId: string;
  createdAt?: Date;
}

/**
 * Writes one usage row. The unique request id makes this the exactly-once point of the whole chain:
 * a retried, stalled or re-delivered job inserts nothing the second time. Returns whether it inserted.
 */
export async function recordUsage(db: Db, row: UsageRow): Promise<boolean> {
  const inserted = await db("usage_events")
    .insert({
      request_id: row.requestId,
      customer_id: row.customerId,
      model: row.model,
      prompt_tokens: row.promptTokens,
      cached_tokens: row.cachedTokens,
      completion_tokens: row.completionTokens,
      reasoning_tokens: row.reasoningTokens,
      billable_tokens: row.billableTokens,
      provider_cost_micros: row.providerCostMicros,
      price_micros: row.priceMicros,
      source: row.source,
      plan_id: row.planId,
      ...(row.createdAt ? { created_at: row.createdAt } : {}),
    })
    .onConflict("request_id")
    .ignore()
    .returning("id");
  return inserted.length === 1;
}
