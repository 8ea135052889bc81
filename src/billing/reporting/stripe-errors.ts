import Stripe from "stripe";

/** What a failed meter-event call means for its report. */
export type MeterEventFailure = "duplicate" | "rate-limited" | "retryable" | "permanent";

const DUPLICATE = /an event already exists with identifier/i;

/**
 * Sorts a meter-event error by what to do. Stripe's duplicate-identifier 400 means the event was
 * already recorded: delivered. A 429 is a rate limit, not a failed attempt. 5xx, 409 and network
 * errors are transient. Every other Stripe 4xx will fail the same way again. Anything that is not
 * a Stripe error (a database hiccup) is treated as transient.
 */
export function classifyMeterEventError(err: unknown): MeterEventFailure {
  if (!(err instanceof Stripe.errors.StripeError)) return "retryable";
  const status = err.statusCode;
  if (status === 400 && DUPLICATE.test(err.message)) return "duplicate";
  if (status === 429 || err instanceof Stripe.errors.StripeRateLimitError) return "rate-limited";
  if (err instanceof Stripe.errors.StripeConnectionError || status === undefined) return "retryable";
  if (status >= 500 || status === 409) return "retryable";
  return "permanent";
}

/** A short, secret-free description for logs and `last_error`. */
export function describeStripeError(err: unknown): string {
  if (err instanceof Stripe.errors.StripeError) {
    return `${err.statusCode ?? "network"} ${err.type}${err.code ? ` ${err.code}` : ""}: ${err.message}`;
  }
  return err instanceof Error ? err.message : String(err);
}
