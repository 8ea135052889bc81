import { PermanentError, RetryableError } from "../errors.js";
import type { Logger } from "../platform/logger.js";
import type { ChatError } from "../queues/queues.js";

/**
 * What customers see of a provider's failures. A provider speaks to meterline's account, not the
 * customer's: its text can name the operator's organization, project, key or quota. The rule:
 * - transient failures (429, 408, 409, 5xx, network) past the chat's retries → 502 `upstream_error`
 *   with a generic message and meterline's request id. A provider 429 is the operator's limit, not
 *   the customer's, so it is not passed on as a 429 (which would read as their own rate limit);
 * - 401/403 → 502 `upstream_auth` (meterline's credentials, see classifyLlmError);
 * - 400 and 422 are about the customer's own parameters: the provider's message is kept when it
 *   names nothing of the operator's account (PASS_THROUGH_SAFE); otherwise, and for any other 4xx,
 *   a generic message with the provider's status and code.
 * The operator's log keeps the provider's full text with the request id.
 */

// Words and identifiers through which a provider message can speak of the account behind the call.
const ACCOUNT_DETAIL =
  /\b(?:org|proj|sk|user|acct)[-_][A-Za-z0-9]|organi[sz]ation|project|api[ _-]?key|billing|quota|https?:\/\//i;

/** The provider message a customer may see for a provider 4xx, or undefined when it must be replaced. */
export function passThroughMessage(status: number, message: string | undefined): string | undefined {
  if (status !== 400 && status !== 422) return undefined;
  if (!message || message.length > 1_000 || ACCOUNT_DETAIL.test(message)) return undefined;
  return message;
}

/** The generic text for a provider refusal whose own message is not shown. */
export function genericRefusal(status: number, code: string | null): string {
  return `The upstream model provider refused this request (status ${status}${code ? `, code ${code}` : ""}).`;
}

/** A provider's HTTP failure, as its SDK reports it. */
export type ProviderFailure = {
  provider: string;
  /** 0 when no HTTP status was received (an aborted or broken response). */
  status: number;
  /** The provider's own message in its error body, if any. */
  providerMessage: string | undefined;
  /** The OpenAI-style type and the code a customer sees for a refusal. */
  type: string;
  code: string | null;
};

/**
 * Sorts a provider's HTTP failure by what to do, for every provider alike: rate limits, timeouts,
 * conflicts, 5xx (Anthropic's 529 overloaded included) and no status are retried; 401/403 are
 * meterline's credentials (502 upstream_auth, not the customer's fault nor theirs to see); any
 * other 4xx is the request's fault and fails at once with the provider's status, the message by
 * the rule above. The SDK's error stays on `cause`, for the operator's log.
 */
export function classifyProviderFailure(f: ProviderFailure, cause: Error): Error {
  const { status } = f;
  if (status === 408 || status === 409 || status === 429 || status >= 500 || status === 0) {
    return new RetryableError(`${f.provider} answered ${status}: ${cause.message}`, { cause });
  }
  if (status === 401 || status === 403) {
    return new PermanentError(
      "The upstream LLM provider rejected meterline's credentials",
      502,
      "server_error",
      "upstream_auth",
      { cause },
    );
  }
  return new PermanentError(
    passThroughMessage(status, f.providerMessage) ?? genericRefusal(status, f.code),
    status,
    f.type,
    f.code,
    { cause },
  );
}

/** The error a caller sees for a chat whose retries ran out on transient failures. */
export function upstreamFailure(requestId: string): ChatError {
  return {
    status: 502,
    message: `The upstream model provider failed (request ${requestId}); retry later.`,
    type: "server_error",
    code: "upstream_error",
  };
}

/**
 * The operator's record of a provider failure: its status and full text, on a logger that carries
 * the request id. What the customer is shown omits both.
 */
export function logProviderError(log: Logger, err: unknown): void {
  // Classified errors keep the provider's own response on `cause`.
  const source = err instanceof PermanentError || err instanceof RetryableError ? (err.cause ?? err) : err;
  const status = (source as { status?: unknown } | null)?.status;
  const providerMessage = source instanceof Error ? source.message : String(source);
  log.warn(
    { status: typeof status === "number" ? status : undefined, providerMessage },
    "LLM provider error",
  );
}
