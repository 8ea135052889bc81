import { ApiError } from "./api-error.js";

/** Value of `Stripe-Rate-Limited-Reason` on the per-(customer, meter) concurrency 429. */
export const METER_CONCURRENCY_REASON = "resource-specific";

/** Stripe's rule that only one meter event call per (customer, meter) may be in flight, with the counts tests read. */
export class MeterConcurrency {
  private readonly inFlight = new Map<string, number>();
  maxConcurrent = 0;
  violations = 0;

  /**
   * Counts a call for `key` in. `release` must run once the call is over, refused or not; `refusal`
   * is the 429 Stripe answers when another call for the same key is still in flight.
   */
  enter(key: string): { release: () => void; refusal?: ApiError } {
    const n = (this.inFlight.get(key) ?? 0) + 1;
    this.inFlight.set(key, n);
    const release = () => {
      const left = (this.inFlight.get(key) ?? 1) - 1;
      if (left <= 0) this.inFlight.delete(key);
      else this.inFlight.set(key, left);
    };
    this.maxConcurrent = Math.max(this.maxConcurrent, n);
    if (n === 1) return { release };
    this.violations++;
    const refusal = new ApiError(
      429,
      "rate_limit_error",
      "Too many concurrent requests: only one meter event request per customer and meter may be in progress at a time.",
      { code: "rate_limit", headers: { "stripe-rate-limited-reason": METER_CONCURRENCY_REASON } },
    );
    return { release, refusal };
  }

  reset(): void {
    this.maxConcurrent = 0;
    this.violations = 0;
  }
}
