import type { WebDeps } from "../../deps.js";
import type { AuthenticatedCustomer } from "../../billing/customers/customers.js";
import { billingPeriod } from "../../billing/ledger/periods.js";
import type { QuotaHold } from "../../billing/ledger/quota.js";
import { HttpError, unavailable } from "../../errors.js";
import { estimatePromptTokens } from "../../llm/usage.js";
import type { ChatRequestBody } from "./request.js";

type Deps = Pick<WebDeps, "config" | "db" | "quota">;

/** A chat's worst case before it runs: its prompt, estimated, and the completion cap it asked for. */
export interface ChatEstimate {
  promptTokens: number;
  completionTokens: number;
}

/**
 * The estimate a reservation holds: the prompt by our tokenizer, the completion at its cap
 * (`max_completion_tokens`, `max_tokens`, or QUOTA_COMPLETION_ESTIMATE_TOKENS). Only plans with a
 * hard limit or prepaid credits, and end users under a limit, need it; the others skip the tokenizer.
 */
export async function estimateChat(
  config: Pick<WebDeps["config"], "quotaCompletionEstimateTokens">,
  customer: AuthenticatedCustomer,
  body: ChatRequestBody,
  /** The request's end user is under a limit (src/api/chat/end-user.ts). */
  endUserLimited = false,
): Promise<ChatEstimate | undefined> {
  const { plan } = customer;
  if (plan.hardLimitTokens === null && plan.kind !== "prepaid" && !endUserLimited) return undefined;
  return {
    promptTokens: await estimatePromptTokens(body),
    completionTokens: body.max_completion_tokens ?? body.max_tokens ?? config.quotaCompletionEstimateTokens,
  };
}

/**
 * Reserves a chat's estimated tokens against its customer's hard limit before it is enqueued, or
 * answers 402. The reservation is the prompt estimate plus the completion's cap (`max_completion_tokens`,
 * `max_tokens`, or QUOTA_COMPLETION_ESTIMATE_TOKENS); the worker holds the provider to that cap. Plans without a hard limit pay nothing for this. A repeated Idempotency-Key whose job
 * already exists reserves nothing: that job holds (or has settled) the reservation.
 */
export async function holdChatQuota(
  deps: Deps,
  customer: AuthenticatedCustomer,
  requestId: string,
  estimate: ChatEstimate | undefined,
  /** A job under this request id already holds (or has settled) the reservation. */
  jobHoldsQuota: boolean,
): Promise<QuotaHold | undefined> {
  const limitTokens = customer.plan.hardLimitTokens;
  if (limitTokens === null || !estimate) return undefined;
  const completion = estimate.completionTokens;
  const tokens = estimate.promptTokens + completion;
  const period = await billingPeriod(deps.db, customer.customerId);
  try {
    if (jobHoldsQuota) return undefined;
    const result = await deps.quota.reserve(customer.customerId, {
      requestId,
      period,
      limitTokens,
      tokens,
    });
    if (result.ok) return { periodStart: period.start.toISOString(), tokens, completionTokens: completion };
    const remaining = Math.max(0, limitTokens - result.usedTokens);
    throw new HttpError(
      402,
      `This request needs an estimated ${tokens} tokens but only ${remaining} of the ${limitTokens}-token ` +
        `hard limit of plan '${customer.plan.id}' remain in this period (until ${period.end.toISOString()}). ` +
        "Upgrade the plan or wait for the next period.",
      "insufficient_quota",
      "quota_exceeded",
    );
  } catch (err) {
    if (err instanceof HttpError) throw err;
    throw unavailable("The quota service is unavailable; retry shortly.", err);
  }
}
