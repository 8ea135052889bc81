import { Router } from "express";
import Stripe from "stripe";
import { z } from "zod";
import type { Deps } from "../../deps.js";
import { HttpError, NotFoundError, notFound, unavailable } from "../../errors.js";
import { jsonBody, parseInput } from "../input.js";
import {
  createCreditCheckout,
  stripeCustomerIdOf,
  topUpAmountProblem,
} from "../../billing/credits/checkout.js";
import { autoTopUpOf, listTopUps, setAutoTopUp, type TopUp } from "../../billing/credits/top-ups.js";

type Bounds = Deps["config"]["creditCheckout"];

/** An amount of a top-up: whole cents within the configured bounds (checkout and automatic alike). */
const topUpAmount = (bounds: Bounds, param: string) =>
  z.number(`${param} must be an integer number of micro-dollars.`).superRefine((value, ctx) => {
    const problem = topUpAmountProblem(value, bounds);
    if (problem)
      ctx.addIssue({ code: "custom", message: `${param} ${problem}.`, params: { code: "invalid_amount" } });
  });

const pageUrl = (param: string) =>
  z
    .string()
    .max(2_048)
    .refine((v) => URL.canParse(v) && ["http:", "https:"].includes(new URL(v).protocol), {
      message: `${param} must be an http:// or https:// URL.`,
      params: { code: "invalid_url" },
    })
    .optional();

const checkoutBody = (bounds: Bounds) =>
  jsonBody(
    z.object({
      amount_micros: topUpAmount(bounds, "amount_micros"),
      success_url: pageUrl("success_url"),
      cancel_url: pageUrl("cancel_url"),
    }),
  );

const notLinked = (customerId: string) =>
  new HttpError(
    409,
    `Customer ${customerId} is not linked to a Stripe customer, so it cannot pay through Stripe. ` +
      "The operator links it (customers:create --stripe-customer <cus_…>).",
    "invalid_request_error",
    "customer_not_linked_to_stripe",
  );

/** POST /v1/credits/checkout: a Stripe Checkout Session to buy credits (README "Top-ups"). */
export function creditRoutes(deps: Pick<Deps, "db" | "config" | "stripe" | "logger">): Router {
  const router = Router();
  const body = checkoutBody(deps.config.creditCheckout);

  router.post("/credits/checkout", async (req, res) => {
    const customerId = req.customer!.customerId;
    const input = parseInput(body, req.body);
    if (!deps.stripe)
      throw new HttpError(
        503,
        "Buying credits is not available: this meterline has no Stripe account configured (STRIPE_SECRET_KEY).",
        "service_unavailable",
        "stripe_not_configured",
      );
    const successUrl = input.success_url ?? deps.config.creditCheckout.successUrl;
    const cancelUrl = input.cancel_url ?? deps.config.creditCheckout.cancelUrl ?? successUrl;
    if (!successUrl)
      throw new HttpError(
        400,
        "Missing required parameter: 'success_url' (where Stripe sends the buyer after paying; no default is configured).",
        "invalid_request_error",
        "missing_required_parameter",
        "success_url",
      );
    const stripeCustomerId = await stripeCustomerIdOf(deps.db, customerId);
    if (!stripeCustomerId) throw notLinked(customerId);
    const checkout = await createCreditCheckout(deps.stripe, {
      customerId,
      stripeCustomerId,
      amountMicros: input.amount_micros,
      successUrl,
      cancelUrl: cancelUrl ?? successUrl,
    }).catch((err: unknown) => {
      throw stripeFailure(err);
    });
    res.json({
      id: checkout.id,
      url: checkout.url,
      amount_micros: checkout.amountMicros,
      expires_at: checkout.expiresAt.toISOString(),
    });
  });

  return router;
}

/** Stripe refusing the session (e.g. its customer is gone) is a 409; Stripe unreachable a 503. */
function stripeFailure(err: unknown): HttpError {
  if (err instanceof Stripe.errors.StripeInvalidRequestError)
    return new HttpError(
      409,
      `Stripe refused the Checkout Session: ${err.message}`,
      "invalid_request_error",
      "stripe_refused",
      null,
      { cause: err },
    );
  return unavailable("Stripe is unavailable; retry shortly.", err);
}

const autoTopUpBody = (bounds: Bounds) =>
  jsonBody(
    z
      .object({
        enabled: z.boolean("enabled must be true or false.").default(true),
        threshold_micros: z
          .number()
          .int("threshold_micros must be an integer.")
          .min(0, "threshold_micros must be 0 or more.")
          .max(Number.MAX_SAFE_INTEGER)
          .optional(),
        amount_micros: topUpAmount(bounds, "amount_micros").optional(),
        max_per_month: z
          .number()
          .int("max_per_month must be an integer.")
          .min(1, "max_per_month must be from 1 to 1000.")
          .max(1_000, "max_per_month must be from 1 to 1000.")
          .optional(),
      })
      .superRefine((body, ctx) => {
        if (!body.enabled) return;
        for (const field of ["threshold_micros", "amount_micros", "max_per_month"] as const)
          if (body[field] === undefined)
            ctx.addIssue({
              code: "custom",
              path: [field],
              message: `Missing required parameter: '${field}' (needed unless "enabled": false).`,
              params: { code: "missing_required_parameter" },
            });
      }),
  );

const topUpJson = (t: TopUp) => ({
  id: t.id,
  status: t.status,
  month: t.month,
  amount_micros: t.amountMicros,
  payment_intent_id: t.paymentIntentId,
  failure: t.failure,
  created_at: t.createdAt.toISOString(),
});

/** PUT/GET /admin/customers/:id/auto-top-up, mounted under the authenticated /admin. */
export function adminAutoTopUpRoutes(deps: Pick<Deps, "db" | "config">): Router {
  const router = Router();
  const body = autoTopUpBody(deps.config.creditCheckout);

  router.put("/customers/:id/auto-top-up", async (req, res) => {
    const customerId = String(req.params.id);
    const input = parseInput(body, req.body);
    const linked = await stripeCustomerIdOf(deps.db, customerId);
    if (linked === undefined) throw notFound(`No customer ${customerId}.`);
    if (input.enabled && !linked) throw notLinked(customerId);
    const settings = input.enabled
      ? {
          thresholdMicros: input.threshold_micros!,
          amountMicros: input.amount_micros!,
          maxPerMonth: input.max_per_month!,
        }
      : { enabled: false as const };
    const saved = await setAutoTopUp(deps.db, customerId, settings).catch((err: unknown) => {
      throw err instanceof NotFoundError ? notFound(`Customer ${customerId} has no automatic top-up.`) : err;
    });
    res.json(await autoTopUpJson(deps, customerId, saved));
  });

  router.get("/customers/:id/auto-top-up", async (req, res) => {
    const customerId = String(req.params.id);
    if ((await stripeCustomerIdOf(deps.db, customerId)) === undefined)
      throw notFound(`No customer ${customerId}.`);
    res.json(await autoTopUpJson(deps, customerId, await autoTopUpOf(deps.db, customerId)));
  });

  return router;
}

async function autoTopUpJson(
  deps: Pick<Deps, "db">,
  customerId: string,
  settings: Awaited<ReturnType<typeof autoTopUpOf>>,
) {
  return {
    object: "auto_top_up",
    customer_id: customerId,
    enabled: settings?.enabled ?? false,
    threshold_micros: settings?.thresholdMicros ?? null,
    amount_micros: settings?.amountMicros ?? null,
    max_per_month: settings?.maxPerMonth ?? null,
    updated_at: settings?.updatedAt.toISOString() ?? null,
    top_ups: (await listTopUps(deps.db, customerId)).map(topUpJson),
  };
}
