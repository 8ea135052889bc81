import { appendEntry, lockCreditAccount, type Trx } from "./account.js";

export interface Consumption {
  requestId: string;
  requestedMicros: number;
  /** What the credits paid. */
  coveredMicros: number;
  /** What they could not: the part the invoice carries. */
  remainderMicros: number;
}

type ConsumptionRow = { request_id: string; requested_micros: number; covered_micros: number };

const fromRow = (r: ConsumptionRow): Consumption => ({
  requestId: r.request_id,
  requestedMicros: r.requested_micros,
  coveredMicros: r.covered_micros,
  remainderMicros: r.requested_micros - r.covered_micros,
});

/**
 * Pays up to `amountMicros` of one request from the customer's credits, inside the caller's
 * transaction (the usage row's, so the row and its consumption commit or roll back together).
 * Draws from the grant that expires first (grants without expiry last, ties by grant order), across
 * as many grants as it takes, never below zero; grants past their expiry are not drawn even before
 * the sweep expires them. It covers at most the balance.
 *
 * A request consumes once: `credit_consumptions` is keyed by request id, so a repeat returns what
 * the first call recorded (also when it covered nothing). Concurrent consumers of one customer are
 * serialized by the account lock (account.ts), which is what keeps the total consumed within the
 * balance. Throws NotFoundError for an unknown customer.
 */
export async function consumeCredits(
  trx: Trx,
  input: { customerId: string; requestId: string; amountMicros: number },
): Promise<Consumption> {
  if (!Number.isSafeInteger(input.amountMicros) || input.amountMicros < 0)
    throw new RangeError(`amountMicros must be a non-negative integer, got ${input.amountMicros}`);
  await lockCreditAccount(trx, input.customerId);
  const [claimed]: ConsumptionRow[] = await trx("credit_consumptions")
    .insert({
      request_id: input.requestId,
      customer_id: input.customerId,
      requested_micros: input.amountMicros,
    })
    .onConflict("request_id")
    .ignore()
    .returning("*");
  if (!claimed)
    return fromRow(await trx("credit_consumptions").where({ request_id: input.requestId }).first());

  const grants: Array<{ id: number; remaining_micros: number }> = await trx("credit_grants")
    .where({ customer_id: input.customerId })
    .where("remaining_micros", ">", 0)
    .where((q) => q.whereNull("expires_at").orWhere("expires_at", ">", trx.fn.now()))
    .orderByRaw("expires_at ASC NULLS LAST, id ASC")
    .select("id", "remaining_micros");
  let covered = 0;
  for (const { grant, take } of drawFromGrants(grants, input.amountMicros)) {
    await trx("credit_grants")
      .where({ id: grant.id })
      .update({ remaining_micros: grant.remaining_micros - take });
    await appendEntry(trx, {
      customerId: input.customerId,
      kind: "consumption",
      grantId: grant.id,
      requestId: input.requestId,
      amountMicros: -take,
    });
    covered += take;
  }
  if (covered > 0)
    await trx("credit_consumptions")
      .where({ request_id: input.requestId })
      .update({ covered_micros: covered });
  return fromRow({ ...claimed, covered_micros: covered });
}

/**
 * What drawing `amountMicros` takes from each grant, in the order given (the drawing order: expiring
 * first, then grant order): each as much as it has left until the amount is covered; grants already
 * drawn to zero (earlier rows of a group) are passed over. Covers at most what the grants hold together.
 */
export function drawFromGrants<G extends { remaining_micros: number }>(
  grants: readonly G[],
  amountMicros: number,
): Array<{ grant: G; take: number }> {
  const drawn: Array<{ grant: G; take: number }> = [];
  let left = amountMicros;
  for (const grant of grants) {
    if (left <= 0) break;
    const take = Math.min(grant.remaining_micros, left);
    if (take <= 0) continue;
    drawn.push({ grant, take });
    left -= take;
  }
  return drawn;
}
