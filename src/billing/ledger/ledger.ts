import type { Knex } from "knex";
import type { Db } from "../../platform/db.js";
import { storeChatOutcomes, type ChatOutcome } from "../../chat/requests.js";
import type { TokenUsage } from "../pricing/prices.js";

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
  /** The price-table name the row was priced at, or "default" (DEFAULT_MODEL_PRICE); see resolvePrice. */
  priceModel?: string;
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
    ...(row.priceModel ? { price_model: row.priceModel } : {}),
    ...(row.createdAt ? { created_at: row.createdAt } : {}),
  };
}

type Pending = {
  row: UsageRow;
  outcome?: ChatOutcome;
  resolve(inserted: boolean): void;
  reject(err: unknown): void;
};

// One group-commit queue per pool: rows from concurrent jobs that arrive while an INSERT is in
// flight go out together in the next one, so a worker running hundreds of chats at once spends one
// round trip (and one commit) on many rows instead of one each. A lone row is sent at once.
const groups = new WeakMap<Db, { pending: Pending[]; flushing: boolean }>();
const MAX_GROUP = 500;

/**
 * Writes one usage row, and with it (same transaction) the chat's stored answer when the chat is
 * kept (keyed or async). The unique request id makes this the exactly-once point of the whole
 * chain: a retried, stalled or re-delivered job inserts nothing the second time. Returns whether it
 * inserted.
 */
export function recordUsage(db: Db, row: UsageRow, outcome?: ChatOutcome): Promise<boolean> {
  let group = groups.get(db);
  if (!group) groups.set(db, (group = { pending: [], flushing: false }));
  const result = new Promise<boolean>((resolve, reject) =>
    group.pending.push({ row, outcome, resolve, reject }),
  );
  if (!group.flushing) void flush(db, group);
  return result;
}

async function flush(db: Db, group: { pending: Pending[]; flushing: boolean }): Promise<void> {
  group.flushing = true;
  while (group.pending.length > 0) {
    const batch = group.pending.splice(0, MAX_GROUP);
    try {
      settle(batch, await insertRows(db, batch));
    } catch (err) {
      // One bad row must not fail its neighbours: retry them one by one, each with its own outcome.
      if (batch.length === 1) batch[0]!.reject(err);
      else
        await Promise.all(
          batch.map((p) =>
            insertRows(db, [p]).then(
              (ids) => settle([p], ids),
              (e: unknown) => p.reject(e),
            ),
          ),
        );
    }
  }
  group.flushing = false;
}

/** The first caller of each inserted request id gets true; a duplicate in the same group gets false. */
function settle(batch: Pending[], inserted: Set<string>): void {
  for (const p of batch) {
    const mine = inserted.delete(p.row.requestId);
    p.resolve(mine);
  }
}

async function insertRows(db: Db, batch: Pending[]): Promise<Set<string>> {
  const outcomes = batch.flatMap((p) => (p.outcome ? [p.outcome] : []));
  const insert = async (q: Db | Knex.Transaction) => {
    const inserted = await q("usage_events")
      .insert(batch.map((p) => columnsOf(p.row)))
      .onConflict("request_id")
      .ignore()
      .returning("request_id");
    // Rows and answers share one transaction: a repeated key never finds an answer without its bill.
    await storeChatOutcomes(q, outcomes);
    return new Set(inserted.map((r: { request_id: string }) => r.request_id));
  };
  return outcomes.length === 0 ? insert(db) : db.transaction(insert);
}

/**
 * Writes many usage rows in one statement, skipping request ids already recorded. Returns the rows
 * this call inserted, so callers count each row once however often a batch is retried.
 */
export async function recordUsageRows(
  db: Db,
  rows: readonly UsageRow[],
): Promise<Array<{ requestId: string; billableTokens: number; createdAt: Date }>> {
  if (rows.length === 0) return [];
  const inserted: Array<{ request_id: string; billable_tokens: number; created_at: Date }> = await db(
    "usage_events",
  )
    .insert(rows.map(columnsOf))
    .onConflict("request_id")
    .ignore()
    .returning(["request_id", "billable_tokens", "created_at"]);
  return inserted.map((r) => ({
    requestId: r.request_id,
    billableTokens: r.billable_tokens,
    createdAt: r.created_at,
  }));
}
