import type { WebDeps } from "../../deps.js";
import type { AuthenticatedCustomer } from "../../billing/customers/customers.js";
import { tokensAffordable } from "../../billing/ledger/charges.js";
import { listPriceMicros } from "../../billing/pricing/plans.js";
import { HttpError, InsufficientCreditsError, unavailable } from "../../errors.js";
import type { ChatJobData } from "../../queues/queues.js";
import type { ChatEstimate } from "./quota.js";
import { releaseChatHolds, type HoldReleaseDeps } from "../../chat/holds.js";

type Deps = Pick<WebDeps, "creditCounter">;

/**
 * Reserves a prepaid customer's chat from its credits before it is enqueued, or answers 402
 * `insufficient_credits`. The reservation is the worst-case price at the plan's rate: the prompt
 * estimate plus the completion cap asked for (or QUOTA_COMPLETION_ESTIMATE_TOKENS). When the balance
 * covers the prompt and some of the completion but not all of it, the chat is served with its
 * completion capped at what the balance covers (the worker holds the provider to it, a stream stops
 * there with finish reason `length`). Other plans reserve nothing: credits pay their overage as rows
 * are written, and what they do not cover goes on the invoice. A repeated Idempotency-Key whose job
 * already exists reserves nothing: that job holds (or has settled) the reservation.
 */
export async function holdChatCredits(
  deps: Deps,
  customer: AuthenticatedCustomer,
  requestId: string,
  estimate: ChatEstimate | undefined,
  jobHoldsCredits: boolean,
): Promise<ChatJobData["credits"]> {
  const { plan } = customer;
  if (plan.kind !== "prepaid" || jobHoldsCredits || !estimate) return undefined;
  const { promptTokens, completionTokens } = estimate;
  const maxMicros = listPriceMicros(plan, promptTokens + completionTokens);
  const minMicros = listPriceMicros(plan, promptTokens + 1);
  try {
    const result = await deps.creditCounter.reserve(customer.customerId, requestId, { maxMicros, minMicros });
    if (result.ok) {
      const covered = tokensAffordable(plan, promptTokens + completionTokens, result.reservedMicros);
      return { micros: result.reservedMicros, completionTokens: Math.max(1, covered - promptTokens) };
    }
    throw new InsufficientCreditsError(
      `This request needs at least ${minMicros} micro-dollars of credits (its prompt of about ` +
        `${promptTokens} tokens and one completion token at plan '${plan.id}''s rate) but the balance ` +
        `available is ${result.availableMicros}. Top up with POST /v1/credits/checkout.`,
      result.availableMicros,
    );
  } catch (err) {
    if (err instanceof HttpError) throw err;
    throw unavailable("The credit service is unavailable; retry shortly.", err);
  }
}

/** Gives a request's reservations back when no job will settle them; best effort, never throws. */
export async function releaseHolds(
  deps: HoldReleaseDeps,
  customerId: string,
  requestId: string,
  holds: Pick<ChatJobData, "quota" | "endUser" | "endUserQuota" | "credits">,
): Promise<void> {
  await releaseChatHolds(deps, { customerId, requestId, ...holds }).catch(() => undefined);
}
