import type { Db } from "../../platform/db.js";
import { NotFoundError } from "../../errors.js";
import { tokensAffordable } from "../ledger/charges.js";
import type { Plan } from "../pricing/plans.js";

/** The longest end user the API accepts (the OpenAI `user` field, or `X-End-User`); a CHECK holds it. */
export const END_USER_MAX_CHARS = 512;

/**
 * A limit a customer sets on its end users' usage per billing period: tokens, spend at the plan's
 * rate, or both (the tighter wins). `endUser` null: the default for every end user without its own.
 */
export interface EndUserLimit {
  customerId: string;
  endUser: string | null;
  limitTokens: number | null;
  limitMicros: number | null;
  updatedAt: Date;
}

type LimitRow = {
  customer_id: string;
  end_user: string | null;
  limit_tokens: number | null;
  limit_micros: number | null;
  updated_at: Date;
};

const limitOf = (r: LimitRow): EndUserLimit => ({
  customerId: r.customer_id,
  endUser: r.end_user,
  limitTokens: r.limit_tokens,
  limitMicros: r.limit_micros,
  updatedAt: r.updated_at,
});

/** Sets (or replaces) a customer's default or one end user's limit. Throws NotFoundError for an unknown customer. */
export async function setEndUserLimit(
  db: Db,
  input: Pick<EndUserLimit, "customerId" | "endUser" | "limitTokens" | "limitMicros">,
): Promise<EndUserLimit> {
  if (!(await db("customers").where({ id: input.customerId }).first("id")))
    throw new NotFoundError(`no customer "${input.customerId}"`);
  const [row] = (await db("end_user_limits")
    .insert({
      customer_id: input.customerId,
      end_user: input.endUser,
      limit_tokens: input.limitTokens,
      limit_micros: input.limitMicros,
    })
    .onConflict(db.raw("(customer_id, (coalesce(end_user, '')))"))
    .merge({ limit_tokens: input.limitTokens, limit_micros: input.limitMicros, updated_at: db.fn.now() })
    .returning("*")) as LimitRow[];
  return limitOf(row!);
}

/** A customer's limits: the default first, then its end users' by name. */
export async function listEndUserLimits(db: Db, customerId: string): Promise<EndUserLimit[]> {
  const rows: LimitRow[] = await db("end_user_limits")
    .where({ customer_id: customerId })
    .orderByRaw("end_user NULLS FIRST");
  return rows.map(limitOf);
}

/** Removes the default (`endUser` null) or one end user's limit; whether there was one. */
export async function deleteEndUserLimit(
  db: Db,
  customerId: string,
  endUser: string | null,
): Promise<boolean> {
  const deleted = await db("end_user_limits")
    .where({ customer_id: customerId })
    .whereRaw("coalesce(end_user, '') = ?", [endUser ?? ""])
    .delete();
  return deleted > 0;
}

/** The limit that applies to one end user: its own, else the customer's default, else none. */
export async function endUserLimitFor(
  db: Db,
  customerId: string,
  endUser: string,
): Promise<EndUserLimit | undefined> {
  const row: LimitRow | undefined = await db("end_user_limits")
    .where({ customer_id: customerId })
    .where((q) => q.where({ end_user: endUser }).orWhereNull("end_user"))
    .orderByRaw("end_user NULLS LAST")
    .first();
  return row && limitOf(row);
}

/**
 * A limit in tokens, as the counter holds it: the token limit, or the tokens the spend limit buys at
 * the plan's rate, whichever is smaller. A spend limit on a plan with no rate limits nothing.
 */
export function limitTokensOf(
  limit: Pick<EndUserLimit, "limitTokens" | "limitMicros">,
  plan: Pick<Plan, "includedTokens" | "overagePer1kMicros">,
): number {
  const bySpend =
    limit.limitMicros === null
      ? Number.MAX_SAFE_INTEGER
      : tokensAffordable(plan, Number.MAX_SAFE_INTEGER, limit.limitMicros);
  return Math.min(limit.limitTokens ?? Number.MAX_SAFE_INTEGER, bySpend);
}
