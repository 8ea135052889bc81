import type { Knex } from "knex";
import { NotFoundError } from "../../errors.js";

export type Trx = Knex.Transaction;

/**
 * Locks the customer's credit account row (creating it on first use) for the rest of `trx`.
 * Every write to a customer's credits (grant, consumption, expiry, void) takes this lock first, so
 * they run one after the other for that customer: a consumer reads the grants' remaining amounts only
 * after the previous consumer committed, and concurrent consumers cannot both draw the same micros.
 * One lock per customer also fixes the order in which rows are locked, so writers never deadlock
 * (locking the grants themselves would lock them in drawing order for a consumer but in id order
 * for the expiry sweep). Throws NotFoundError for an unknown customer.
 */
export async function lockCreditAccount(trx: Trx, customerId: string): Promise<void> {
  const lock = () =>
    trx("credit_accounts").where({ customer_id: customerId }).forUpdate().first("customer_id");
  if (await lock()) return;
  const customer = await trx("customers").where({ id: customerId }).first("id");
  if (!customer) throw new NotFoundError(`no customer "${customerId}"`);
  await trx("credit_accounts").insert({ customer_id: customerId }).onConflict("customer_id").ignore();
  await lock();
}

export type CreditSource = "purchased" | "promotional" | "manual" | "auto_top_up";
export const CREDIT_SOURCES: readonly CreditSource[] = ["purchased", "promotional", "manual", "auto_top_up"];

export type CreditEntryKind = "grant" | "consumption" | "expiry" | "void";

/** One line of the ledger; `amountMicros` is signed (a grant adds, the rest take away). */
export interface CreditEntry {
  id: number;
  customerId: string;
  kind: CreditEntryKind;
  grantId: number;
  requestId: string | null;
  amountMicros: number;
  createdAt: Date;
}

/** Adds one ledger line; the ledger is append-only (a trigger refuses UPDATE and DELETE). */
export async function appendEntry(
  trx: Trx,
  entry: Pick<CreditEntry, "customerId" | "kind" | "grantId" | "amountMicros"> & { requestId?: string },
): Promise<void> {
  await trx("credit_entries").insert({
    customer_id: entry.customerId,
    kind: entry.kind,
    grant_id: entry.grantId,
    request_id: entry.requestId ?? null,
    amount_micros: entry.amountMicros,
  });
}
