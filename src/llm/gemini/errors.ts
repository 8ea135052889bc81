import { ApiError } from "@google/genai";
import { PermanentError, RetryableError } from "../../errors.js";
import { genericRefusal, passThroughMessage } from "../provider-errors.js";

/** Gemini's error body: Google's `{error: {code, message, status, details}}`. */
type GoogleError = { message?: string; status?: string; details?: { reason?: string }[] };

/**
 * Sorts Gemini failures as classifyLlmError (src/llm/client.ts) sorts OpenAI's: 429, 408, 409, 5xx
 * and anything that is not an HTTP answer (connection refused or reset, a stream cut mid-way, the
 * timeout) are retried; 401/403 and Google's "API key not valid" (a 400 with reason
 * API_KEY_INVALID) are meterline's credentials → 502 upstream_auth; any other 4xx fails at once
 * with Gemini's status, its message only where provider-errors.ts lets the customer see it, and
 * Google's status name (lower case, e.g. invalid_argument) as the code. `cause` keeps the original.
 */
export function classifyGeminiError(err: unknown): Error {
  if (err instanceof PermanentError || err instanceof RetryableError) return err;
  if (!(err instanceof ApiError)) {
    const message = err instanceof Error ? err.message : String(err);
    return new RetryableError(`Gemini unreachable or its answer broke off: ${message}`, { cause: err });
  }
  const status = err.status;
  if (status === 408 || status === 409 || status === 429 || status >= 500) {
    return new RetryableError(`Gemini answered ${status}`, { cause: err });
  }
  const body = googleError(err.message);
  if (status === 401 || status === 403 || body.details?.some((d) => d.reason === "API_KEY_INVALID")) {
    return new PermanentError(
      "The upstream LLM provider rejected meterline's credentials",
      502,
      "server_error",
      "upstream_auth",
      { cause: err },
    );
  }
  const code = body.status?.toLowerCase() ?? null;
  return new PermanentError(
    passThroughMessage(status, body.message) ?? genericRefusal(status, code),
    status,
    status === 404 ? "not_found_error" : "invalid_request_error",
    code,
    { cause: err },
  );
}

/** The SDK's ApiError message is the JSON body it received (after "got status: …. " in streams). */
function googleError(message: string): GoogleError {
  try {
    const parsed = JSON.parse(message.slice(message.indexOf("{"))) as { error?: GoogleError };
    return parsed.error ?? {};
  } catch {
    return {};
  }
}
