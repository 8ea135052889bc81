/**
 * Every error class of meterline, sorted by what the caller should do: answer an HTTP client,
 * retry or drop a job, fix the input (environment, command line, plan), or set one owner's data
 * aside. HTTP errors carry an OpenAI-style body; job errors tell the queue whether to retry (the one
 * processor wrapper, src/queues/processor.ts, turns PermanentError into BullMQ's UnrecoverableError).
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

// Answer the HTTP client.

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

/** 402 for a prepaid customer whose credits do not cover a request; says the balance and how to top up. */
export class InsufficientCreditsError extends HttpError {
  constructor(
    message: string,
    readonly balanceMicros: number,
  ) {
    super(402, message, "insufficient_quota", "insufficient_credits");
  }

  override toBody() {
    const body = super.toBody();
    return {
      error: { ...body.error, balance_micros: this.balanceMicros, top_up: "POST /v1/credits/checkout" },
    };
  }
}

export const badRequest = (message: string, code: string | null = null, param: string | null = null) =>
  new HttpError(400, message, "invalid_request_error", code, param);
export const unauthorized = (message: string, code = "invalid_api_key") =>
  new HttpError(401, message, "authentication_error", code);
export const notFound = (message: string) => new HttpError(404, message, "not_found_error", "not_found");
export const unavailable = (message: string, cause?: unknown) =>
  new HttpError(503, message, "service_unavailable", "service_unavailable", null, { cause });

// Retry the job, or fail it for good.

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

// Fix the input and run again: the message says what is wrong.

/** The environment does not make a valid configuration; the message names every invalid variable. */
export class ConfigError extends Error {
  override name = "ConfigError";
}

/** A CLI command was called wrongly: the CLI prints the message and its usage, and exits 2. */
export class UsageError extends Error {
  override name = "UsageError";
}

/** A plan's fields do not make a valid plan. */
export class PlanInputError extends Error {
  override name = "PlanInputError";
}

/** What the caller named (a customer, a report) does not exist. */
export class NotFoundError extends Error {
  override name = "NotFoundError";
}

// Set one owner's data aside: the others go on.

/** A usage sum that is too large to handle as a number: refused for its owner alone. */
export class SumOutOfRangeError extends Error {
  constructor(
    readonly what: string,
    readonly value?: string,
  ) {
    // The largest exact JS number: every int8 of the ledger is read as one.
    super(`${what} is ${value ? `${value}, ` : ""}above the largest exact number ${Number.MAX_SAFE_INTEGER}`);
    this.name = "SumOutOfRangeError";
  }
}
