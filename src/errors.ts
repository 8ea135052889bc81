/**
 * Errors sorted by what the caller should do. HTTP errors carry an OpenAI-style body; job errors
 * tell the queue whether to retry.
 */

export type ErrorType =
  | "invalid_request_error"
  | "authentication_error"
  | "permission_error"
  | "not_found_error"
  | "insufficient_quota"
  | "rate_limit_error"
  | "server_error"
  | "service_unavailable";

/** An error the API answers with its own status and an OpenAI-style body. */
export class HttpError extends Error {
  override name = "HttpError";
  constructor(
    readonly status: number,
    message: string,
    readonly type: ErrorType,
    readonly code: string | null = null,
    readonly param: string | null = null,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }

  toBody() {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } };
  }
}

export const badRequest = (message: string, code: string | null = null, param: string | null = null) =>
  new HttpError(400, message, "invalid_request_error", code, param);
export const unauthorized = (message: string, code = "invalid_api_key") =>
  new HttpError(401, message, "authentication_error", code);
export const notFound = (message: string) => new HttpError(404, message, "not_found_error", "not_found");
export const unavailable = (message: string, cause?: unknown) =>
  new HttpError(503, message, "service_unavailable", "service_unavailable", null, { cause });

/** A transient failure: the job should be retried with backoff. */
export class RetryableError extends Error {
  override name = "RetryableError";
}

/** A failure that no retry can fix: the job fails at once. `status` is what the caller should see. */
export class PermanentError extends Error {
  override name = "PermanentError";
  constructor(
    message: string,
    readonly status: number,
    readonly type: string = "invalid_request_error",
    readonly code: string | null = null,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}
