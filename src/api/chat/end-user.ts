import type { WebDeps } from "../../deps.js";
import type { AuthenticatedCustomer } from "../../billing/customers/customers.js";
import { endUserLimitFor, limitTokensOf, type EndUserLimit } from "../../billing/end-users/limits.js";
import { billingPeriod } from "../../billing/ledger/periods.js";
import type { QuotaHold } from "../../billing/ledger/quota.js";
import { HttpError, unavailable } from "../../errors.js";
import type { ChatEstimate } from "./quota.js";

type Deps = Pick<WebDeps, "db" | "endUserQuota">;

/** The limit a request's end user is held to, or undefined (no end user, or no limit set for it). */
export async function endUserLimit(
  deps: Pick<Deps, "db">,
  customerId: string,
  endUser: string | undefined,
): Promise<EndUserLimit | undefined> {
  if (endUser === undefined) return undefined;
  return endUserLimitFor(deps.db, customerId, endUser).catch((err: unknown) => {
    throw unavailable("The end-user limits are unavailable; retry shortly.", err);
  });
}

/**
 * Reserves a chat's estimate against its end user's limit before it is enqueued, or answers 402
 * `end_user_limit_exceeded`. As a hard limit, atomic across requests and processes (one Redis counter
 * per customer, end user and period); unlike it, an end user with room for the prompt and part of the
 * completion is served with the completion cut at what is left (the worker caps the provider there).
 * A repeated Idempotency-Key whose job already exists reserves nothing: that job holds the reservation.
 */
export async function holdEndUserQuota(
  deps: Deps,
  customer: AuthenticatedCustomer,
  requestId: string,
  endUser: string | undefined,
  limit: EndUserLimit | undefined,
  estimate: ChatEstimate | undefined,
  jobHoldsQuota: boolean,
): Promise<QuotaHold | undefined> {
  if (!limit || endUser === undefined || !estimate || jobHoldsQuota) return undefined;
  const limitTokens = limitTokensOf(limit, customer.plan);
  const { promptTokens } = estimate;
  const tokens = promptTokens + estimate.completionTokens;
  try {
    const period = await billingPeriod(deps.db, customer.customerId);
    const scope = { customerId: customer.customerId, endUser };
    const input = { requestId, period, limitTokens, tokens, minTokens: promptTokens + 1 };
    const result = await deps.endUserQuota.reserve(scope, input);
    if (result.ok) {
      const completionTokens = result.tokens - promptTokens;
      return { periodStart: period.start.toISOString(), tokens: result.tokens, completionTokens };
    }
    const remaining = Math.max(0, limitTokens - result.usedTokens);
    throw new HttpError(
      402,
      `End user '${endUser}' has ${remaining} of its ${limitTokens}-token limit left in this period ` +
        `(until ${period.end.toISOString()}); this request needs at least ${promptTokens + 1} ` +
        "(its prompt, estimated, and one completion token). Raise the end user's limit or wait for the next period.",
      "insufficient_quota",
      "end_user_limit_exceeded",
    );
  } catch (err) {
    if (err instanceof HttpError) throw err;
    throw unavailable("The quota service is unavailable; retry shortly.", err);
  }
}
