import Stripe from "stripe";
import { describe, expect, it } from "vitest";
import { loadConfig } from "../src/config.js";
import { reportBackoffStrategy } from "../jobs/stripe-report.js";
import { classifyMeterEventError } from "../src/billing/reporting/stripe-errors.js";
import { stripeAddress } from "../src/billing/reporting/stripe-client.js";
import { planPriceParams, shiftDecimal } from "../src/billing/reporting/stripe-setup.js";
import { DEFAULT_PLANS } from "../src/billing/pricing/plans.js";
import { reportIdempotencyKey, reportIdentifier } from "../src/billing/reporting/usage-reports.js";

const base = {
  reportId: 42,
  customerId: "cust_abc",
  eventName: "meterline_tokens",
  windowStart: new Date("2026-11-27T10:00:00Z"),
};

describe("a report's identifier", () => {
  it("is the same every time for the same report and differs when any input differs", () => {
    const id = reportIdentifier(base);
    expect(reportIdentifier({ ...base, windowStart: new Date(base.windowStart) })).toBe(id);
    expect(id).toMatch(/^mlr_42_[0-9a-f]{32}$/);
    expect(id.length).toBeLessThanOrEqual(100);
    const variants = [
      { reportId: 43 },
      { customerId: "cust_abd" },
      { eventName: "other" },
      { windowStart: new Date("2026-11-27T11:00:00Z") },
    ].map((change) => reportIdentifier({ ...base, ...change }));
    expect(new Set([id, ...variants]).size).toBe(5);
  });

  it("has an idempotency key that is stable per Stripe customer", () => {
    const id = reportIdentifier(base);
    expect(reportIdempotencyKey(id, "cus_1")).toBe(reportIdempotencyKey(id, "cus_1"));
    expect(reportIdempotencyKey(id, "cus_1")).not.toBe(reportIdempotencyKey(id, "cus_2"));
    expect(reportIdempotencyKey(id, "cus_1").startsWith(id)).toBe(true);
  });
});

describe("stripe-report retries", () => {
  it("back off exponentially with jitter up to the cap", () => {
    const config = loadConfig({ STRIPE_REPORT_BACKOFF_MS: "1000", STRIPE_REPORT_BACKOFF_MAX_MS: "3600000" });
    const backoff = reportBackoffStrategy(config);
    for (let i = 0; i < 50; i++) {
      expect(backoff(1)).toBeGreaterThanOrEqual(500);
      expect(backoff(1)).toBeLessThanOrEqual(1000);
      expect(backoff(4)).toBeGreaterThanOrEqual(4000);
      expect(backoff(4)).toBeLessThanOrEqual(8000);
      expect(backoff(40)).toBeGreaterThanOrEqual(1_800_000);
      expect(backoff(40)).toBeLessThanOrEqual(3_600_000);
    }
  });

  it("sort Stripe's answers into sent, rate-limited, retryable and permanent", () => {
    const err = (type: string, statusCode: number | undefined, message = "boom") =>
      Stripe.errors.StripeError.generate({ type, statusCode, message } as never);
    expect(
      classifyMeterEventError(
        err("invalid_request_error", 400, "An event already exists with identifier x."),
      ),
    ).toBe("duplicate");
    expect(classifyMeterEventError(err("rate_limit_error", 429))).toBe("rate-limited");
    expect(classifyMeterEventError(err("api_error", 500))).toBe("retryable");
    expect(classifyMeterEventError(err("api_error", 409))).toBe("retryable");
    expect(
      classifyMeterEventError(new Stripe.errors.StripeConnectionError({ message: "socket hang up" })),
    ).toBe("retryable");
    expect(classifyMeterEventError(err("invalid_request_error", 400, "No such customer: 'cus_x'"))).toBe(
      "permanent",
    );
    expect(classifyMeterEventError(err("authentication_error", 401))).toBe("permanent");
    expect(classifyMeterEventError(new Error("connection terminated"))).toBe("retryable");
  });
});

describe("Stripe settings", () => {
  it("turn STRIPE_API_BASE into the SDK's host, port and protocol", () => {
    expect(stripeAddress("http://127.0.0.1:12111")).toEqual({
      host: "127.0.0.1",
      port: 12111,
      protocol: "http",
    });
    expect(stripeAddress("https://stripe.internal")).toEqual({
      host: "stripe.internal",
      port: 443,
      protocol: "https",
    });
    expect(stripeAddress(undefined)).toEqual({});
  });

  it("price plans exactly: a graduated tier at 0 for the allowance, a licensed base fee", () => {
    expect(shiftDecimal(2_000, 7)).toBe("0.0002");
    expect(shiftDecimal(1_500, 7)).toBe("0.00015");
    expect(shiftDecimal(20_000_000, 4)).toBe("2000");
    expect(shiftDecimal(0, 7)).toBe("0");
    const pro = JSON.parse(
      JSON.stringify(
        planPriceParams(
          DEFAULT_PLANS.find((p) => p.id === "pro")!,
          "mtr_1",
        ),
      ),
    );
    expect(pro.usage).toMatchObject({
      billing_scheme: "tiered",
      tiers_mode: "graduated",
      tiers: [
        { up_to: 2_000_000, unit_amount: 0 },
        { up_to: "inf", unit_amount_decimal: "0.00015" },
      ],
      recurring: { usage_type: "metered", meter: "mtr_1" },
    });
    expect(pro.base).toMatchObject({ unit_amount_decimal: "2000", recurring: { usage_type: "licensed" } });
    const usage = JSON.parse(
      JSON.stringify(
        planPriceParams(
          DEFAULT_PLANS.find((p) => p.id === "usage")!,
          "mtr_1",
        ),
      ),
    );
    expect(usage.usage.unit_amount_decimal).toBe("0.0002");
    expect(usage.base).toBeUndefined();
  });
});
