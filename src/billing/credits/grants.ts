import type { Db } from "../../platform/db.js";
import { NotFoundError } from "../../errors.js";
import { appendEntry, lockCreditAccount, type CreditSource, type Trx } from "./account.js";

export interface CreditGrant {
  id: number;
  customerId: string;
  source: CreditSource;
  amountMicros: number;
  remainingMicros: number;
  expiresAt: Date | null;
  reference: string | null;
  createdAt: Date;
}

type GrantRow = {
  id: number;
  customer_id: string;
  source: CreditSource;
  amount_micros: number;
  remaining_micros: number;
  expires_at: Date | null;
  reference: string | null;
  created_at: Date;
};

export const grantFromRow = (r: GrantRow): CreditGrant => ({
  id: r.id,
  customerId: r.customer_id,
  source: r.source,
  amountMicros: r.amount_micros,
  remainingMicros: r.remaining_micros,
  expiresAt: r.expires_at,
  reference: r.reference,
  createdAt: r.created_at,
});

export interface GrantInput {
  customerId: string;
  source: CreditSource;
  /** A positive integer; callers validate it (CLI flags, the admin API's schema). */
  amountMicros: number;
  expiresAt?: Date | null;
  /** Makes the grant idempotent: a Stripe Checkout Session or PaymentIntent id, an operator's ticket… */
  reference?: string | null;
}

/**
 * Grants credits once per reference: a repeat (however often, however concurrent) returns the grant
 * the first one made, with `created: false`; it may belong to another customer, which the caller
 * checks. The UNIQUE reference makes a concurrent repeat wait for the first insert and then find it.
 * Throws NotFoundError for an unknown customer.
 */
export async function grantCredits(
  db: Db,
  input: GrantInput,
): Promise<{ grant: CreditGrant; created: boolean }> {
  return db.transaction(async (trx) => {
    await lockCreditAccount(trx, input.customerId);
    const [row]: GrantRow[] = await trx("credit_grants")
      .insert({
        customer_id: input.customerId,
        source: input.source,
        amount_micros: input.amountMicros,
        remaining_micros: input.amountMicros,
        expires_at: input.expiresAt ?? null,
        reference: input.reference ?? null,
      })
      .onConflict("reference")
      .ignore()
      .returning("*");
    if (!row) {
      const existing: GrantRow = await trx("credit_grants").where({ reference: input.reference }).first();
      return { grant: grantFromRow(existing), created: false };
    }
    await appendEntry(trx, {
      customerId: row.customer_id,
      kind: "grant",
      grantId: row.id,
      amountMicros: row.amount_micros,
    });
    return { grant: grantFromRow(row), created: true };
  });
}

/**
 * Takes what is left of a grant out of the balance (what was already consumed stays consumed).
 * Idempotent: a grant with nothing left gets no entry. Returns the micros voided.
 */
export async function voidGrant(
  db: Db,
  grantId: number,
): Promise<{ customerId: string; voidedMicros: number }> {
  return db.transaction(async (trx) => {
    const grant: GrantRow | undefined = await trx("credit_grants").where({ id: grantId }).first();
    if (!grant) throw new NotFoundError(`no credit grant ${grantId}`);
    await lockCreditAccount(trx, grant.customer_id);
    return { customerId: grant.customer_id, voidedMicros: await zeroGrant(trx, grantId, "void") };
  });
}

/**
 * Sets a grant's remaining amount to zero with one `void` or `expiry` entry for it; the caller holds
 * the customer's account lock. A grant already at zero (consumed, voided or expired) is left alone.
 */
export async function zeroGrant(trx: Trx, grantId: number, kind: "void" | "expiry"): Promise<number> {
  const grant: GrantRow = await trx("credit_grants").where({ id: grantId }).first();
  if (grant.remaining_micros === 0) return 0;
  await trx("credit_grants").where({ id: grantId }).update({ remaining_micros: 0 });
  await appendEntry(trx, {
    customerId: grant.customer_id,
    kind,
    grantId,
    amountMicros: -grant.remaining_micros,
  });
  return grant.remaining_micros;
}
