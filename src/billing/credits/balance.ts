import type { Db } from "../../platform/db.js";
import type { CreditEntry } from "./account.js";

/**
 * The customer's spendable balance: the sum of its ledger entries, where a grant past its expiry
 * counts zero even before the sweep writes its `expiry` entry (consumption no longer draws from it).
 * An unknown customer, or one never granted credits, has 0.
 */
export async function creditBalance(db: Db, customerId: string): Promise<number> {
  const row = await db("credit_entries as e")
    .join("credit_grants as g", "g.id", "e.grant_id")
    .where("e.customer_id", customerId)
    .where((q) => q.whereNull("g.expires_at").orWhere("g.expires_at", ">", db.fn.now()))
    .first(db.raw("coalesce(sum(e.amount_micros), 0)::bigint as balance"));
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
