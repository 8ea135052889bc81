import Anthropic from "@anthropic-ai/sdk";
import { PermanentError, RetryableError } from "../../errors.js";
import { genericRefusal, passThroughMessage } from "../provider-errors.js";

/**
 * Sorts Anthropic's failures as `classifyLlmError` sorts OpenAI's: rate limits (429), timeouts
 * (408), conflicts (409), 5xx and 529 overloaded, and network failures are retried; 401/403 are
 * meterline's credentials (502 upstream_auth); any other 4xx is the request's fault and fails at
 * once with Anthropic's status. What the customer may read follows provider-errors.ts; Anthropic's
 * own text stays on `cause`, for the operator's log.
 */
export function classifyAnthropicError(err: unknown): Error {
  if (err instanceof Anthropic.APIConnectionError) {
    return new RetryableError(`Anthropic unreachable: ${err.message}`, { cause: err });
  }
  if (err instanceof Anthropic.APIError) {
    const status = err.status ?? 0;
    if (status === 408 || status === 409 || status === 429 || status >= 500 || status === 0) {
      return new RetryableError(`Anthropic answered ${status}: ${err.message}`, { cause: err });
    }
    if (status === 401 || status === 403) {
      return new PermanentError(
        "The upstream LLM provider rejected meterline's credentials",
        502,
        "server_error",
        "upstream_auth",
        { cause: err },
      );
    }
    // Anthropic's own error types (not_found_error, …) become the code; OpenAI's type for a 4xx.
    const code = err.errorCode ?? (err.type && err.type !== "invalid_request_error" ? err.type : null);
    return new PermanentError(
      passThroughMessage(status, err.apiMessage ?? undefined) ?? genericRefusal(status, code),
      status,
      "invalid_request_error",
      code,
      { cause: err },
    );
  }
  return err instanceof Error ? err : new Error(String(err));
}
