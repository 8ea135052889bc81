import Stripe from "stripe";
import { describe, expect, it } from "vitest";
import { subscriptionObject } from "../src/local/stripe-emulator.js";
import { useStack } from "./helpers/stack.js";
import { deliver, waitForEvents, WEBHOOK_SECRET } from "./helpers/stripe-webhooks.js";

// Our own Redis: one test kills it.
const stack = useStack({ redis: "private-fsync", stripe: "webhooks", env: { STRIPE_EVENT_SWEEP_MS: "300" } });

const subscription = (status = "active") =>
  subscriptionObject({
    customer: "cus_intake",
    status,
    priceId: "price_x",
    periodStart: 1_800_000_000,
    periodEnd: 1_802_592_000,
  });
const rows = (id: string) => stack.db("stripe_events").where({ id });

describe("POST /webhooks/stripe", () => {
  it("refuses a missing, wrong, tampered or stale signature with 400 and stores nothing", async () => {
    const built = stack.stripe.buildEvent("customer.subscription.updated", subscription());
    const id = String(built.event.id);
    const stale = Stripe.webhooks.generateTestHeaderString({
      payload: built.payload,
      secret: WEBHOOK_SECRET,
      timestamp: Math.floor(Date.now() / 1000) - 600,
    });
    const wrongSecret = Stripe.webhooks.generateTestHeaderString({
      payload: built.payload,
      secret: "whsec_other",
    });
    const cases = [
      { payload: built.payload, header: "" },
      { payload: built.payload, header: wrongSecret },
      { payload: built.payload.replace('"active"', '"canceled"'), header: built.header },
      { payload: built.payload, header: stale },
    ];
    for (const attempt of cases) {
      const { status, body } = await deliver(stack.url, attempt);
      expect(status).toBe(400);
      expect((body.error as { type: string }).type).toBe("invalid_request_error");
    }
    const missing = await fetch(`${stack.url}/webhooks/stripe`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: built.payload,
    });
    expect(missing.status).toBe(400);
    expect(((await missing.json()) as { error: { code: string } }).error.code).toBe("missing_signature");
    expect(await rows(id)).toHaveLength(0);
    expect(await stack.web.queues.stripeEvent.getJob(id)).toBeUndefined();

    const ok = await deliver(stack.url, built);
    expect(ok).toEqual({ status: 200, body: { received: true, duplicate: false } });
    expect(await rows(id)).toHaveLength(1);
  });

  it("processes an event delivered 5 times exactly once", async () => {
    const sub = subscription("trialing");
    const built = stack.stripe.buildEvent("customer.subscription.created", sub);
    const id = String(built.event.id);
    const answers = await Promise.all(Array.from({ length: 5 }, () => deliver(stack.url, built)));
    expect(answers.map((a) => a.status)).toEqual([200, 200, 200, 200, 200]);
    expect(answers.filter((a) => a.body.duplicate === false)).toHaveLength(1);
    await waitForEvents(stack.db, [id]);
    // Two more after processing: still nothing new.
    await deliver(stack.url, built);
    await deliver(stack.url, built);
    const [row] = await rows(id);
    expect(row).toMatchObject({ status: "processed", attempts: 1, type: "customer.subscription.created" });
    const job = await stack.web.queues.stripeEvent.getJob(id);
    expect(job?.attemptsMade).toBe(1);
    expect(
      await stack
        .db("subscriptions")
        .where({ id: String(sub.id) })
        .first(),
    ).toMatchObject({
      status: "trialing",
      stripe_price_id: "price_x",
      last_event_created: built.event.created,
    });
  });

  it("records unhandled event types as ignored", async () => {
    const built = stack.stripe.buildEvent("charge.refunded", { id: "ch_1", object: "charge", amount: 100 });
    expect((await deliver(stack.url, built)).status).toBe(200);
    await waitForEvents(stack.db, [String(built.event.id)]);
    expect((await rows(String(built.event.id)))[0]).toMatchObject({ status: "ignored" });
  });

  it("stores an event while Redis is down, answers 200, and the sweeper applies it once Redis is back", async () => {
    await stack.redisServer.kill();
    const built = stack.stripe.buildEvent("customer.subscription.created", subscription("active"));
    const id = String(built.event.id);
    const { status } = await deliver(stack.url, built);
    expect(status).toBe(200);
    expect((await rows(id))[0]).toMatchObject({ status: "received" });

    await stack.redisServer.restart();
    await waitForEvents(stack.db, [id], { timeoutMs: 30_000 });
    expect((await rows(id))[0]).toMatchObject({ status: "processed", attempts: 1 });
  });
});
