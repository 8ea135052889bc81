import type { Db } from "../db.js";
import type { TokenUsage } from "./prices.js";

export interface UsageRow extends TokenUsage {
  requestId: string;
  customerId: string;
  model: string;
  billableTokens: number;
  providerCostMicros: number;
  priceMicros: number;
  /** provider: counted by the LLM; estimated: by our tokenizer; ingested: reported by the customer. */
  source: "provider" | "estimated" | "ingested";
  planId: string;
  createdAt?: Date;
}

function columnsOf(row: UsageRow) {
  return {
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
  };
}

/**
 * Writes one usage row. The unique request id makes this the exactly-once point of the whole chain:
 * a retried, stalled or re-delivered job inserts nothing the second time. Returns whether it inserted.
 */
export async function recordUsage(db: Db, row: UsageRow): Promise<boolean> {
  const inserted = await db("usage_events")
    .insert(columnsOf(row))
    .onConflict("request_id")
    .ignore()
    .returning("id");
  return inserted.length === 1;
}

/**
 * Writes many usage rows in one statement, skipping request ids already recorded. Returns the rows
 * this call inserted, so callers count each row once however often a batch is retried.
 */
export async function recordUsageRows(
  db: Db,
  rows: readonly UsageRow[],
): Promise<Array<{ billableTokens: number; createdAt: Date }>> {
  if (rows.length === 0) return [];
  const inserted: Array<{ billable_tokens: number; created_at: Date }> = await db("usage_events")
    .insert(rows.map(columnsOf))
    .onConflict("request_id")
    .ignore()
    .returning(["billable_tokens", "created_at"]);
  return inserted.map((r) => ({ billableTokens: r.billable_tokens, createdAt: r.created_at }));
}
