import { deleteEndUserLimit, END_USER_MAX_CHARS, setEndUserLimit } from "../billing/end-users/limits.js";
import { formatMicros } from "../billing/pricing/money.js";
import { NotFoundError, UsageError } from "../errors.js";
import { optionalFlag, requireFlag, type CliContext } from "./context.js";

function limitFlag(ctx: CliContext, name: string): number | null {
  const value = optionalFlag(ctx, name);
  if (value === undefined) return null;
  if (!/^[1-9]\d{0,11}$/.test(value))
    throw new UsageError(`--${name} must be a positive integer below 10^12`);
  return Number(value);
}

/**
 * end-users:limit: sets a customer's default limit on its end users, or one end user's (--end-user),
 * in tokens and/or spend per period (README "End users"); --off removes it.
 */
export async function endUsersLimit(ctx: CliContext): Promise<void> {
  const customerId = requireFlag(ctx, "customer");
  const endUser = optionalFlag(ctx, "end-user") ?? null;
  if (endUser !== null && endUser.length > END_USER_MAX_CHARS)
    throw new UsageError(`--end-user must be at most ${END_USER_MAX_CHARS} characters`);
  const who =
    endUser === null ? `${customerId}'s end users (default)` : `${customerId}'s end user '${endUser}'`;
  if (ctx.flags.off === true) {
    const removed = await deleteEndUserLimit(ctx.db(), customerId, endUser);
    if (!removed) throw new NotFoundError(`no limit set for ${who}`);
    ctx.print(`${who}: no limit`, { customer_id: customerId, end_user: endUser, deleted: true });
    return;
  }
  const limitTokens = limitFlag(ctx, "tokens");
  const limitMicros = limitFlag(ctx, "spend-micros");
  if (limitTokens === null && limitMicros === null)
    throw new UsageError("give --tokens, --spend-micros or both, or --off to remove the limit");
  const limit = await setEndUserLimit(ctx.db(), { customerId, endUser, limitTokens, limitMicros });
  const parts = [
    ...(limit.limitTokens === null ? [] : [`${limit.limitTokens} tokens`]),
    ...(limit.limitMicros === null ? [] : [formatMicros(limit.limitMicros, 2)]),
  ];
  ctx.print(`${who}: at most ${parts.join(" and ")} per billing period`, limit);
}
