import Anthropic from "@anthropic-ai/sdk";
import { PermanentError, RetryableError } from "../../errors.js";
import { classifyProviderFailure } from "../provider-errors.js";

/**
 * Sorts Anthropic's failures as `classifyLlmError` sorts OpenAI's (classifyProviderFailure):
 * network failures and 429/408/409/5xx/529 overloaded are retried, 401/403 are 502 upstream_auth,
 * another 4xx keeps Anthropic's status. Anthropic's own error type (not_found_error, …) becomes the
 * code, under OpenAI's type for a refusal. A response that breaks off mid-way is retryable too.
 */
export function classifyAnthropicError(err: unknown): Error {
  if (err instanceof Anthropic.APIConnectionError) {
    return new RetryableError(`Anthropic unreachable: ${err.message}`, { cause: err });
  }
  if (err instanceof Anthropic.APIError) {
    const code = err.errorCode ?? (err.type && err.type !== "invalid_request_error" ? err.type : null);
    const failure = {
      provider: "Anthropic",
      status: err.status ?? 0,
      providerMessage: err.apiMessage ?? undefined,
      type: "invalid_request_error",
      code,
    };
    return classifyProviderFailure(failure, err);
  }
  if (err instanceof RetryableError || err instanceof PermanentError) return err;
  // Anything else broke the response off mid-way (a reset socket under a stream): worth a retry.
  return new RetryableError(`Anthropic's response broke off: ${String(err)}`, { cause: err });
}
