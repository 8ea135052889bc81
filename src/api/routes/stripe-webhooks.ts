import express, { Router } from "express";
import Stripe from "stripe";
import type { Deps } from "../../deps.js";
import { badRequest, unavailable } from "../../errors.js";
import { storeStripeEvent } from "../../billing/webhooks/stripe-events.js";

type WebhookDeps = Pick<Deps, "config" | "db" | "queues" | "logger" | "metrics">;

/**
 * POST /webhooks/stripe: verify the signature on the raw body, store the event, enqueue it, answer
 * 200. Nothing else happens here: Stripe wants a quick 2xx and the worker does the business logic.
 * Must be mounted before any JSON body parser, or the signature cannot be checked.
 */
export function stripeWebhookRoutes(deps: WebhookDeps): Router {
  const router = Router();
  const secret = deps.config.stripeWebhookSecret;
  router.post(
    "/webhooks/stripe",
    express.raw({ type: "application/json", limit: "1mb" }),
    async (req, res) => {
      if (!secret) {
        // Answer 5xx so Stripe keeps retrying until the operator sets the secret: nothing is lost.
        deps.logger.error("STRIPE_WEBHOOK_SECRET is not set: webhook events are refused");
        throw unavailable("Webhook signing secret is not configured.");
      }
      const signature = req.headers["stripe-signature"];
      if (!Buffer.isBuffer(req.body)) throw badRequest("Expected an application/json body.", "invalid_body");
      if (typeof signature !== "string") {
        throw badRequest("Missing Stripe-Signature header.", "missing_signature");
      }
      let event: Stripe.Event;
      try {
        event = Stripe.webhooks.constructEvent(req.body, signature, secret);
      } catch (err) {
        throw badRequest(`Invalid webhook signature: ${(err as Error).message}`, "invalid_signature");
      }

      let stored: boolean;
      try {
        stored = await storeStripeEvent(deps.db, event, req.body.toString("utf8"));
      } catch (err) {
        // Not stored: a 503 makes Stripe deliver it again later.
        throw unavailable("Could not store the event; retry later.", err);
      }
      deps.metrics.webhookEvents.inc({
        type: deps.metrics.webhookTypeLabel(event.type),
        outcome: stored ? "received" : "duplicate",
      });
      if (stored) {
        try {
          await deps.queues.stripeEvent.add(
            "apply",
            { kind: "apply", eventId: event.id },
            { jobId: event.id },
          );
        } catch (err) {
          // The event is durable in stripe_events: the worker's sweeper enqueues it once Redis is back.
          deps.logger.warn(
            { eventId: event.id, err: (err as Error).message },
            "stripe event stored but not enqueued; the sweeper will enqueue it",
          );
        }
      }
      res.json({ received: true, duplicate: !stored });
    },
  );
  return router;
}
