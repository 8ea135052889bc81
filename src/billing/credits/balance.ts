import type { Knex } from "knex";
import type { Db } from "../../platform/db.js";
import type { CreditEntry } from "./account.js";

/**
 * The customer's spendable balance: the sum of its ledger entries, where a grant past its expiry
 * counts zero even before the sweep writes its `expiry` entry (consumption no longer draws from it).
 * That is the sum of the unexpired grants' remaining amounts, which every ledger write keeps in step
 * with the entries (one indexed range, however long the ledger). An unknown customer, or one never
 * granted credits, has 0.
 */
export async function creditBalance(db: Db, customerId: string): Promise<number> {
  return spendableMicros(db, customerId);
}

/** creditBalance inside a transaction (the caller holds the account lock when it must be exact). */
export async function spendableMicros(q: Db | Knex.Transaction, customerId: string): Promise<number> {
  const row = await q("credit_grants")
    .where({ customer_id: customerId })
    .where("remaining_micros", ">", 0)
    .where((w) => w.whereNull("expires_at").orWhere("expires_at", ">", q.fn.now()))
    .first(q.raw("coalesce(sum(remaining_micros), 0)::bigint as balance"));
  return Number(row?.balance ?? 0);
}

type EntryRow = {
  id: number;
  customer_id: string;
  kind: CreditEntry["kind"];
  grant_id: number;
  request_id: string | null;
  amount_micros: number;
  created_at: Date;
};

/**
 * The customer's ledger, newest first: at most `limit` entries, before entry id `before` when given
 * (pass the last id of a page to get the next one).
 */
export async function creditLedger(
  db: Db,
  customerId: string,
  page: { limit?: number; before?: number } = {},
): Promise<CreditEntry[]> {
  const query = db("credit_entries").where({ customer_id: customerId });
  if (page.before !== undefined) query.where("id", "<", page.before);
  const rows: EntryRow[] = await query.orderBy("id", "desc").limit(page.limit ?? 50);
  return rows.map((r) => ({
    id: r.id,
    customerId: r.customer_id,
    kind: r.kind,
    grantId: r.grant_id,
    requestId: r.request_id,
    amountMicros: r.amount_micros,
    createdAt: r.created_at,
  }));
}

/** Every customer's spendable balance (as creditBalance counts it), largest first; zero balances left out. */
export async function creditBalances(db: Db): Promise<Array<{ customerId: string; balanceMicros: number }>> {
  const rows: Array<{ customer_id: string; balance: string }> = await db("credit_grants")
    .where("remaining_micros", ">", 0)
    .where((w) => w.whereNull("expires_at").orWhere("expires_at", ">", db.fn.now()))
    .groupBy("customer_id")
    .select("customer_id", db.raw("sum(remaining_micros)::bigint AS balance"))
    .orderBy("balance", "desc");
  return rows.map((r) => ({ customerId: r.customer_id, balanceMicros: Number(r.balance) }));
}
