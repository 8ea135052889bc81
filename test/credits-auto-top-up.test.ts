import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createMaintenanceProcessor } from "../jobs/maintenance.js";
import { afterUsage } from "../src/billing/after-usage.js";
import { creditBalance } from "../src/billing/credits/balance.js";
import { consumeCredits } from "../src/billing/credits/consume.js";
import { grantCredits } from "../src/billing/credits/grants.js";
import { runCli, runCliJson } from "./helpers/cli.js";
import { ADMIN_TOKEN, useStack, waitFor } from "./helpers/stack.js";
import { waitForEvents } from "./helpers/stripe-webhooks.js";
import { startReceiver } from "./helpers/webhook-receiver.js";

// README "Top-ups → Automatic top-up": below its threshold a customer is charged off-session once
// (one pending top-up at a time, idempotency key = top-up id), granted on payment_intent.succeeded,
// alerted with credits.auto_top_up_failed when the card declines.
const stack = useStack({
  stripe: "reporting",
  env: { WEBHOOK_BACKOFF_MS: "20", WEBHOOK_MAX_BACKOFF_MS: "100", USAGE_CONCURRENCY: "20" },
});
let receiver: Awaited<ReturnType<typeof startReceiver>>;
beforeAll(async () => {
  receiver = await startReceiver();
});
afterAll(async () => {
  await receiver.close();
});

const admin = (path: string, method = "GET", body?: unknown) =>
  fetch(`${stack.url}/admin${path}`, {
    method,
    headers: { authorization: `Bearer ${ADMIN_TOKEN}`, "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });

const SETTINGS = { threshold_micros: 5_000_000, amount_micros: 20_000_000, max_per_month: 3 };

/** A customer linked to a Stripe customer whose card a paid Checkout saved, with automatic top-up on. */
async function customerWithCard(startMicros: number) {
  const c = await stack.customer();
  const stripeCustomerId = stack.stripe.createCustomer().id;
  await stack.db("customers").where({ id: c.customerId }).update({ stripe_customer_id: stripeCustomerId });
  const res = await fetch(`${stack.url}/v1/credits/checkout`, {
    method: "POST",
    headers: { authorization: `Bearer ${c.key}`, "content-type": "application/json" },
    body: JSON.stringify({ amount_micros: 5_000_000, success_url: "https://app.example/ok" }),
  });
  // Paid, but its events are not delivered: only the saved card matters here.
  await stack.stripe.completeCheckoutSession(((await res.json()) as { id: string }).id);
  if (startMicros > 0)
    await grantCredits(stack.db, { customerId: c.customerId, source: "manual", amountMicros: startMicros });
  const put = await admin(`/customers/${c.customerId}/auto-top-up`, "PUT", SETTINGS);
  expect(put.status).toBe(200);
  return { ...c, stripeCustomerId };
}

/** Spends `micros` of the customer's credits as one request would. */
async function spend(customerId: string, micros: number, requestId: string) {
  await stack.db.transaction((trx) => consumeCredits(trx, { customerId, requestId, amountMicros: micros }));
  await stack.web.creditCounter.adjust(customerId, -micros);
}

/** The automatic top-up PaymentIntents the emulator confirmed for a Stripe customer, by event. */
const intentEvents = (type: string, stripeCustomerId: string) =>
  stack.stripe.events(type).filter((e) => {
    const pi = (e.data as { object: { customer: string; metadata: Record<string, string> } }).object;
    return pi.customer === stripeCustomerId && pi.metadata.meterline_top_up_id !== undefined;
  });

const topUps = (customerId: string) =>
  stack.db("credit_top_ups").where({ customer_id: customerId }).orderBy("created_at");

const deliverToStack = async (eventId: string) => {
  const delivery = await stack.stripe.resendEvent(eventId, { url: `${stack.url}/webhooks/stripe` });
  expect(delivery.status).toBe(200);
};

describe("automatic top-up", () => {
  it("fires once under concurrent spending: one PaymentIntent, one grant, then quiet above the threshold", async () => {
    const { customerId, key, stripeCustomerId } = await customerWithCard(6_000_000);
    await spend(customerId, 2_000_000, "req-auto-1");
    expect(await creditBalance(stack.db, customerId)).toBe(4_000_000);

    // 20 afterUsage calls at once from two processes' deps, and usage batches the worker ingests
    // (each runs afterUsage in the worker) at the same time.
    const worker = await stack.startWorker({}, { name: "worker-2" });
    const direct = Array.from({ length: 20 }, (_, i) =>
      afterUsage(i % 2 ? stack.web : worker.deps, customerId),
    );
    const ingested = Array.from({ length: 5 }, (_, i) =>
      fetch(`${stack.url}/v1/usage`, {
        method: "POST",
        headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
        body: JSON.stringify({
          events: [{ id: `u-${i}`, model: "gpt-4o-mini", prompt_tokens: 10, completion_tokens: 10 }],
        }),
      }),
    );
    await Promise.all([...direct, ...ingested]);
    await waitFor(
      async () => (await stack.db("usage_events").where({ customer_id: customerId })).length === 5,
      {
        what: "the 5 ingested rows",
      },
    );

    const [topUp] = await topUps(customerId);
    expect(await topUps(customerId)).toHaveLength(1);
    const succeeded = await waitFor(() => intentEvents("payment_intent.succeeded", stripeCustomerId)[0], {
      what: "the top-up's payment_intent.succeeded",
    });
    expect(intentEvents("payment_intent.succeeded", stripeCustomerId)).toHaveLength(1);
    const intent = (succeeded.data as { object: { id: string; amount: number; metadata: object } }).object;
    expect(intent).toMatchObject({ amount: 2000, metadata: { meterline_top_up_id: topUp.id } });
    await waitFor(async () => (await topUps(customerId))[0]?.payment_intent_id === intent.id);
    expect((await topUps(customerId))[0]).toMatchObject({ status: "pending", amount_micros: 20_000_000 });

    // Granted on the webhook, once however often it comes.
    const eventId = String(succeeded.id);
    await Promise.all([deliverToStack(eventId), deliverToStack(eventId)]);
    await waitForEvents(stack.db, [eventId]);
    await deliverToStack(eventId);
    expect(
      await stack.db("credit_grants").where({ customer_id: customerId, source: "auto_top_up" }),
    ).toMatchObject([{ amount_micros: 20_000_000, reference: intent.id }]);
    // The 5 ingested rows were paid from credits as they were written (20 tokens at 2,000 per 1K each).
    const paid = 5 * 40;
    expect(await creditBalance(stack.db, customerId)).toBe(24_000_000 - paid);
    expect(await stack.web.creditCounter.available(customerId)).toBe(24_000_000 - paid);
    expect((await topUps(customerId))[0]).toMatchObject({
      status: "succeeded",
      payment_intent_id: intent.id,
    });

    await Promise.all(Array.from({ length: 5 }, () => afterUsage(stack.web, customerId)));
    expect(await topUps(customerId)).toHaveLength(1);
    const shown = (await (await admin(`/customers/${customerId}/auto-top-up`)).json()) as {
      top_ups: Array<{ status: string }>;
    };
    expect(shown).toMatchObject({ enabled: true, ...SETTINGS, top_ups: [{ status: "succeeded" }] });
  });

  it("makes one PaymentIntent when the answer to its creation is lost and the next usage retries", async () => {
    const { customerId, stripeCustomerId } = await customerWithCard(1_000_000);
    // Stripe creates and charges, but no answer arrives (the SDK's own retries are lost too).
    stack.stripe.failNext(10, "drop-after", { path: "POST /v1/payment_intents" });
    await afterUsage(stack.web, customerId);
    stack.stripe.clearFaults();
    expect(intentEvents("payment_intent.succeeded", stripeCustomerId)).toHaveLength(1);
    expect(await topUps(customerId)).toMatchObject([{ status: "pending", payment_intent_id: null }]);

    await afterUsage(stack.web, customerId);
    const [event] = intentEvents("payment_intent.succeeded", stripeCustomerId);
    expect(intentEvents("payment_intent.succeeded", stripeCustomerId)).toHaveLength(1);
    const id = (event!.data as { object: { id: string } }).object.id;
    expect(await topUps(customerId)).toMatchObject([{ status: "pending", payment_intent_id: id }]);
  });

  it("a declined card: one failed top-up, one credits.auto_top_up_failed delivered, no retry until saved again", async () => {
    const hook = await admin("/webhook-endpoints", "POST", {
      url: receiver.url("/top-ups"),
      events: ["credits.auto_top_up_failed"],
    });
    expect(hook.status).toBe(201);
    const { customerId, stripeCustomerId } = await customerWithCard(0);
    expect(stack.stripe.setCardFailing(stripeCustomerId)).toBe(1);

    await Promise.all(Array.from({ length: 10 }, () => afterUsage(stack.web, customerId)));
    const failedEvent = await waitFor(
      () => intentEvents("payment_intent.payment_failed", stripeCustomerId)[0],
    );
    // Stripe's payment_intent.payment_failed comes too, twice: still one alert.
    await deliverToStack(String(failedEvent.id));
    await deliverToStack(String(failedEvent.id));
    await waitForEvents(stack.db, [String(failedEvent.id)]);
    await Promise.all(Array.from({ length: 5 }, () => afterUsage(stack.web, customerId)));

    const [topUp] = await topUps(customerId);
    expect(await topUps(customerId)).toMatchObject([{ status: "failed", failure: "generic_decline" }]);
    const alerts = () => receiver.received.filter((r) => r.path === "/top-ups");
    await waitFor(() => alerts().length === 1, { what: "the alert" });
    const deliveries = () => stack.db("webhook_deliveries").where({ event_id: `evt_${topUp.id}_failed` });
    await waitFor(async () =>
      (await deliveries()).every((d: { status: string }) => d.status === "delivered"),
    );
    expect(await deliveries()).toHaveLength(1);
    expect(await stack.db("webhook_events").where({ type: "credits.auto_top_up_failed" })).toHaveLength(1);
    expect(alerts()).toHaveLength(1);
    expect(alerts()[0]!.event).toMatchObject({
      id: `evt_${topUp.id}_failed`,
      type: "credits.auto_top_up_failed",
      data: {
        customer_id: customerId,
        top_up_id: topUp.id,
        amount_micros: 20_000_000,
        reason: "generic_decline",
        balance_micros: 0,
        payment_intent_id: (failedEvent.data as { object: { id: string } }).object.id,
      },
    });
    expect(await stack.db("credit_grants").where({ customer_id: customerId })).toHaveLength(0);

    // The card is fixed and the settings saved again: the next usage tops up.
    stack.stripe.setCardFailing(stripeCustomerId, false);
    expect((await admin(`/customers/${customerId}/auto-top-up`, "PUT", SETTINGS)).status).toBe(200);
    await afterUsage(stack.web, customerId);
    expect(await topUps(customerId)).toMatchObject([{ status: "failed" }, { status: "pending" }]);
    expect(intentEvents("payment_intent.succeeded", stripeCustomerId)).toHaveLength(1);
  });

  it("the maintenance sweep charges what no usage will: a top-up left by a Stripe outage, a low balance", async () => {
    const stuck = await customerWithCard(0);
    stack.stripe.failNext(10, 500, { path: "POST /v1/payment_intents" });
    await afterUsage(stack.web, stuck.customerId); // logged, not thrown: the usage is written
    stack.stripe.clearFaults();
    expect(await topUps(stuck.customerId)).toMatchObject([{ status: "pending", payment_intent_id: null }]);
    expect(intentEvents("payment_intent.succeeded", stuck.stripeCustomerId)).toHaveLength(0);
    // A customer whose credits ran out without a usage after it (expired, say).
    const idle = await customerWithCard(0);

    const tick = createMaintenanceProcessor(stack.web);
    const result = await tick({}, { name: "expire-credits" });
    expect(result).toMatchObject({ autoTopUps: { failed: 0 } });
    for (const { customerId, stripeCustomerId } of [stuck, idle]) {
      const [event] = intentEvents("payment_intent.succeeded", stripeCustomerId);
      expect(intentEvents("payment_intent.succeeded", stripeCustomerId)).toHaveLength(1);
      const id = (event!.data as { object: { id: string } }).object.id;
      expect(await topUps(customerId)).toMatchObject([{ status: "pending", payment_intent_id: id }]);
    }
    await tick({}, { name: "expire-credits" });
    expect(intentEvents("payment_intent.succeeded", stuck.stripeCustomerId)).toHaveLength(1);

    // Their webhooks never come (none was delivered): once overdue, the sweep asks Stripe instead.
    const both = [stuck.customerId, idle.customerId];
    await stack
      .db("credit_top_ups")
      .whereIn("customer_id", both)
      .update({ updated_at: stack.db.raw("now() - interval '11 minutes'") });
    expect(await tick({}, { name: "expire-credits" })).toMatchObject({ autoTopUps: { settled: 2 } });
    await tick({}, { name: "expire-credits" });
    for (const customerId of both) {
      expect(await topUps(customerId)).toMatchObject([{ status: "succeeded" }]);
      expect(await stack.db("credit_grants").where({ customer_id: customerId })).toMatchObject([
        { source: "auto_top_up", amount_micros: 20_000_000 },
      ]);
    }
  });

  it("stops at max_per_month attempts", async () => {
    const { customerId, stripeCustomerId } = await customerWithCard(0);
    const put = await admin(`/customers/${customerId}/auto-top-up`, "PUT", { ...SETTINGS, max_per_month: 1 });
    expect(put.status).toBe(200);
    await afterUsage(stack.web, customerId);
    const [event] = intentEvents("payment_intent.succeeded", stripeCustomerId);
    await deliverToStack(String(event!.id));
    await waitForEvents(stack.db, [String(event!.id)]);
    await spend(customerId, 19_000_000, "req-max-1");
    await afterUsage(stack.web, customerId);
    expect(await creditBalance(stack.db, customerId)).toBe(1_000_000);
    expect(await topUps(customerId)).toMatchObject([{ status: "succeeded" }]);
  });
});

describe("auto top-up settings", () => {
  it("refuses bad settings and unlinked customers through the admin API", async () => {
    const { customerId } = await stack.customer();
    const put = (body: unknown) => admin(`/customers/${customerId}/auto-top-up`, "PUT", body);
    const cases: Array<[unknown, number, string, string | null]> = [
      [{ ...SETTINGS, amount_micros: 20_000_001 }, 400, "invalid_amount", "amount_micros"],
      [{ ...SETTINGS, max_per_month: 0 }, 400, "invalid_value", "max_per_month"],
      [{ ...SETTINGS, threshold_micros: -1 }, 400, "invalid_value", "threshold_micros"],
      [{ threshold_micros: 1 }, 400, "missing_required_parameter", "amount_micros"],
      [SETTINGS, 409, "customer_not_linked_to_stripe", null],
    ];
    for (const [body, status, code, param] of cases) {
      const res = await put(body);
      expect(res.status, JSON.stringify(body)).toBe(status);
      expect(((await res.json()) as { error: object }).error).toMatchObject({ code, param });
    }
    expect((await admin(`/customers/nope/auto-top-up`, "PUT", SETTINGS)).status).toBe(404);
  });

  it("CLI credits:auto-top-up sets and turns off, with the API's rules", async () => {
    const { customerId } = await stack.customer();
    await stack.db("customers").where({ id: customerId }).update({ stripe_customer_id: "cus_cli" });
    const set = await runCliJson(
      stack.config,
      ...["credits:auto-top-up", "--customer", customerId, "--threshold-micros", "1000000"],
      ...["--amount-micros", "10000000", "--max-per-month", "2"],
    );
    expect(set).toMatchObject({
      customer_id: customerId,
      enabled: true,
      amountMicros: 10_000_000,
      maxPerMonth: 2,
    });
    const bad = await runCli(
      stack.config,
      ...["credits:auto-top-up", "--customer", customerId, "--threshold-micros", "1"],
      ...["--amount-micros", "10000001", "--max-per-month", "2"],
    );
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("whole cents");
    const off = await runCliJson(stack.config, "credits:auto-top-up", "--off", "--customer", customerId);
    expect(off).toMatchObject({ enabled: false, amountMicros: 10_000_000 });
  }, 180_000);
});
