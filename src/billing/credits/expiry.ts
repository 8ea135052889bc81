import type { Db } from "../../platform/db.js";
import { lockCreditAccount } from "./account.js";
import { zeroGrant } from "./grants.js";

/**
 * Gives every grant past its `expires_at` that still has a remaining amount one `expiry` entry for
 * that amount (what was consumed from it stays consumed). Idempotent: an expired grant is at zero,
 * so a repeat, or a concurrent sweep, finds nothing to do. One transaction per customer, so a large
 * sweep holds each customer's lock only briefly. Returns the grants expired and the micros removed,
 * in all and per customer (for the real-time counter, src/billing/credits/counter.ts).
 */
export async function expireCredits(
  db: Db,
  now?: Date,
): Promise<{
  grants: number;
  expiredMicros: number;
  byCustomer: Array<{ customerId: string; micros: number }>;
}> {
  // The database's clock by default: the one consumption compares expiries with.
  const cutoff = now ?? db.fn.now();
  const due: Array<{ customer_id: string }> = await db("credit_grants")
    .where("expires_at", "<=", cutoff)
    .where("remaining_micros", ">", 0)
    .distinct("customer_id");
  let grants = 0;
  let expiredMicros = 0;
  const byCustomer: Array<{ customerId: string; micros: number }> = [];
  for (const { customer_id: customerId } of due) {
    const before = expiredMicros;
    await db.transaction(async (trx) => {
      await lockCreditAccount(trx, customerId);
      // Read under the lock: a consumer that ran meanwhile may have emptied some of these.
      const ids: Array<{ id: number }> = await trx("credit_grants")
        .where({ customer_id: customerId })
        .where("expires_at", "<=", cutoff)
        .where("remaining_micros", ">", 0)
        .orderBy("id")
        .select("id");
      for (const { id } of ids) {
        expiredMicros += await zeroGrant(trx, id, "expiry");
        grants += 1;
      }
    });
    if (expiredMicros > before) byCustomer.push({ customerId, micros: expiredMicros - before });
  }
  return { grants, expiredMicros, byCustomer };
}
