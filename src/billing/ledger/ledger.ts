import type { Knex } from "knex";
import type { Db } from "../../platform/db.js";
import { storeChatOutcomes, type ChatOutcome } from "../../chat/requests.js";
import type { TokenUsage } from "../pricing/prices.js";
import type { RowCharge, RowPricing } from "./charges.js";
import { writePaidRows } from "./paid-rows.js";
import { writePlainRows } from "./plain-rows.js";

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
  /** The plan's allowance and rate the row is charged at (src/billing/ledger/charges.ts). */
  pricing: RowPricing;
  /** The price-table name the row was priced at, or "default" (DEFAULT_MODEL_PRICE); see resolvePrice. */
  priceModel?: string;
  /** The customer's end user the usage was for (`user`, X-End-User, or an ingested event's `user`). */
  endUser?: string;
  createdAt?: Date;
}

/** What recordUsage tells its caller: whether it inserted the row, and the row's charge. */
export interface Recorded {
  inserted: boolean;
  charge: RowCharge;
}

/** A kept chat's answer, made once the row's charge is known (the answer carries its cost). */
export type OutcomeOf = (charge: RowCharge) => ChatOutcome;

type Pending = {
  row: UsageRow;
  outcome?: OutcomeOf;
  resolve(recorded: Recorded): void;
  reject(err: unknown): void;
};

// One group-commit queue per pool: rows from concurrent jobs that arrive while an INSERT is in
// flight go out together in the next one, so a worker running hundreds of chats at once spends one
// round trip (and one commit) on many rows instead of one each. A lone row is sent at once.
const groups = new WeakMap<Db, { pending: Pending[]; flushing: boolean }>();
const MAX_GROUP = 500;

/**
 * Writes one usage row, and with it (same transaction) the chat's stored answer when the chat is
 * kept (keyed or async). The request id, claimed once in `usage_requests`, makes this
 * the exactly-once point of the whole chain: a retried, stalled or re-delivered job inserts nothing the second time. The row is charged
 * and paid (credits, period totals) in the same transaction (plain-rows.ts, paid-rows.ts).
 * Returns whether it inserted, and the row's charge (as first recorded, for a repeat).
 */
export function recordUsage(db: Db, row: UsageRow, outcome?: OutcomeOf): Promise<Recorded> {
  let group = groups.get(db);
  if (!group) groups.set(db, (group = { pending: [], flushing: false }));
  const result = new Promise<Recorded>((resolve, reject) =>
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
      settle(batch, await writeBatch(db, batch));
    } catch (err) {
      // One bad row must not fail its neighbours: retry them one by one, each with its own outcome.
      if (batch.length === 1) batch[0]!.reject(err);
      else
        await Promise.all(
          batch.map((p) =>
            writeBatch(db, [p]).then(
              (ids) => settle([p], ids),
              (e: unknown) => p.reject(e),
            ),
          ),
        );
    }
  }
  group.flushing = false;
}

/**
 * The first caller of each inserted request id gets inserted: true; a duplicate in the same group,
 * or of a row an earlier call wrote, gets false and the charge recorded then.
 */
function settle(batch: Pending[], { charges, inserted }: Written): void {
  const first = new Set(inserted);
  for (const p of batch) {
    const charge = charges.get(p.row.requestId)!;
    p.resolve({ inserted: first.delete(p.row.requestId), charge });
  }
}

type Written = { charges: Map<string, RowCharge>; inserted: ReadonlySet<string> };

/**
 * Writes a group: most rows in one statement (plain-rows.ts); in a transaction of several, those
 * that store a kept chat's answer with the row (the answer carries the charge) and those whose
 * customer has credits to pay from.
 */
async function writeBatch(db: Db, batch: Pending[]): Promise<Written> {
  const kept = new Set(batch.filter((p) => p.outcome).map((p) => p.row.requestId));
  const plain = dedupe(batch.filter((p) => !kept.has(p.row.requestId)).map((p) => p.row));
  if (plain.length === 0) return insertRows(db, batch);
  const written = await writePlainRows(db, plain);
  const charges = written.charges;
  const inserted = new Set(charges.keys());
  for (const [requestId, charge] of await recordedCharges(db, [...written.repeats]))
    charges.set(requestId, charge);
  const rest = batch.filter((p) => kept.has(p.row.requestId) || written.withCredits.has(p.row.requestId));
  if (rest.length > 0) {
    const more = await insertRows(db, rest);
    for (const [requestId, charge] of more.charges) charges.set(requestId, charge);
    for (const requestId of more.inserted) inserted.add(requestId);
  }
  return { charges, inserted };
}

async function insertRows(db: Db, batch: Pending[]): Promise<Written> {
  return db.transaction(async (trx) => {
    const written = await writePaidRows(trx, dedupe(batch.map((p) => p.row)));
    const charges = new Map(written.charges);
    for (const [requestId, charge] of await recordedCharges(trx, [...written.repeats]))
      charges.set(requestId, charge);
    // Rows and answers share one transaction: a repeated key never finds an answer without its bill.
    const unstored = new Set(charges.keys());
    const outcomes = batch.flatMap((p) =>
      p.outcome && unstored.delete(p.row.requestId) ? [p.outcome(charges.get(p.row.requestId)!)] : [],
    );
    await storeChatOutcomes(trx, outcomes);
    return { charges, inserted: new Set(written.charges.keys()) };
  });
}

/** One row per request id, the first: a group may carry the same request twice. */
function dedupe(rows: UsageRow[]): UsageRow[] {
  const seen = new Set<string>();
  return rows.filter((r) => !seen.has(r.requestId) && seen.add(r.requestId));
}

/** The charges of rows written earlier (a repeat): as recorded, without the balances of that moment. */
async function recordedCharges(
  q: Db | Knex.Transaction,
  requestIds: readonly string[],
): Promise<Map<string, RowCharge>> {
  if (requestIds.length === 0) return new Map();
  const rows: Array<{
    request_id: string;
    charge_micros: number;
    credit_tokens: number;
    credit_micros: number;
  }> = await q("usage_events")
    .whereIn("request_id", [...new Set(requestIds)])
    .select("request_id", "charge_micros", "credit_tokens", "credit_micros");
  return new Map(
    rows.map((r) => [
      r.request_id,
      {
        chargeMicros: r.charge_micros,
        creditTokens: r.credit_tokens,
        creditMicros: r.credit_micros,
        creditBalanceMicros: null,
        allowanceRemainingTokens: null,
      },
    ]),
  );
}

/** A row recordUsageRows inserted, as its caller counts it. */
export interface InsertedRow {
  requestId: string;
  billableTokens: number;
  createdAt: Date;
  endUser: string | null;
  charge: RowCharge;
}

/**
 * Writes many usage rows, skipping request ids already recorded: in one statement for customers
 * without credits (plain-rows.ts), in a transaction that pays from credits for the others. Returns
 * the rows this call inserted, so callers count each row once however often a batch is retried.
 */
export async function recordUsageRows(db: Db, rows: readonly UsageRow[]): Promise<Array<InsertedRow>> {
  if (rows.length === 0) return [];
  const unique = dedupe([...rows]);
  const plain = await writePlainRows(db, unique);
  const withCredits = unique.filter((r) => plain.withCredits.has(r.requestId));
  const paid =
    withCredits.length > 0 ? await db.transaction((trx) => writePaidRows(trx, withCredits)) : undefined;
  return [...insertedOf(unique, plain), ...(paid ? insertedOf(withCredits, paid) : [])];
}

/** The rows of `rows` a writer inserted, as recordUsageRows returns them. */
function insertedOf(
  rows: readonly UsageRow[],
  written: { charges: Map<string, RowCharge>; createdAt: Map<string, Date> },
): InsertedRow[] {
  return rows.flatMap((row) => {
    const charge = written.charges.get(row.requestId);
    if (!charge) return [];
    const createdAt = written.createdAt.get(row.requestId)!;
    return [
      {
        requestId: row.requestId,
        billableTokens: row.billableTokens,
        createdAt,
        endUser: row.endUser ?? null,
        charge,
      },
    ];
  });
}
