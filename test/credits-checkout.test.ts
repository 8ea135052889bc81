import Stripe from "stripe";
import { describe, expect, it } from "vitest";
import { creditBalance } from "../src/billing/credits/balance.js";
import { ADMIN_TOKEN, useStack } from "./helpers/stack.js";
import { deliver, waitForEvents } from "./helpers/stripe-webhooks.js";

// README "Top-ups": POST /v1/credits/checkout opens a Stripe Checkout Session, and
// checkout.session.completed grants its credits once, whatever Stripe delivers and in what order.
const stack = useStack({ stripe: "reporting", env: { CREDIT_CHECKOUT_MIN_MICROS: "1000000" } });

const sdk = () =>
  new Stripe("sk_test_meterline", {
    host: "127.0.0.1",
    port: stack.stripe.port,
    protocol: "http",
    maxNetworkRetries: 0,
  });

/** A customer with an API key, linked to a new Stripe customer of the emulator unless `linked` is false. */
async function buyer({ linked = true } = {}) {
  const c = await stack.customer();
  const stripeCustomerId = linked ? stack.stripe.createCustomer().id : null;
  await stack.db("customers").where({ id: c.customerId }).update({ stripe_customer_id: stripeCustomerId });
  return { ...c, stripeCustomerId };
}

const checkout = (key: string | null, body: unknown, url = stack.url) =>
  fetch(`${url}/v1/credits/checkout`, {
    method: "POST",
    headers: { "content-type": "application/json", ...(key ? { authorization: `Bearer ${key}` } : {}) },
    body: JSON.stringify(body),
  });

type ErrorBody = { error: { message: string; type: string; code: string | null; param: string | null } };

const webhookUrl = () => `${stack.url}/webhooks/stripe`;
/** The one event of `type` the emulator built about object `id`. */
const eventAbout = (type: string, id: string) => {
  const found = stack.stripe
    .events(type)
    .filter((e) => (e.data as { object: { id: string } }).object.id === id);
  expect(found).toHaveLength(1);
  return String(found[0]!.id);
};

describe("POST /v1/credits/checkout", () => {
  it("refuses bad amounts and URLs with a 400 naming the field, and a missing key with 401", async () => {
    const { key } = await buyer();
    const cases: Array<[unknown, string, string]> = [
      [{}, "invalid_body", ""],
      [{ amount_micros: "5000000" }, "invalid_value", "amount_micros"],
      [{ amount_micros: 5_000_001 }, "invalid_amount", "amount_micros"],
      [{ amount_micros: 5_000_000.5 }, "invalid_amount", "amount_micros"],
      [{ amount_micros: 990_000 }, "invalid_amount", "amount_micros"],
      [{ amount_micros: 1_000_010_000 }, "invalid_amount", "amount_micros"],
      [{ amount_micros: 5_000_000, success_url: "javascript:alert(1)" }, "invalid_url", "success_url"],
    ];
    for (const [body, code, param] of cases) {
      const res = await checkout(key, body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      const { error } = (await res.json()) as ErrorBody;
      expect(error).toMatchObject({ type: "invalid_request_error", code, param: param || null });
    }
    const whole = (await (await checkout(key, { amount_micros: 5_000_001 })).json()) as ErrorBody;
    expect(whole.error.message).toContain("whole cents");
    expect((await checkout(null, { amount_micros: 5_000_000 })).status).toBe(401);
  });

  it("answers 409 for a customer not linked to Stripe, 400 without a success_url, 503 without Stripe", async () => {
    const unlinked = await buyer({ linked: false });
    const res = await checkout(unlinked.key, { amount_micros: 5_000_000, success_url: "https://a.example" });
    expect(res.status).toBe(409);
    expect(((await res.json()) as ErrorBody).error.code).toBe("customer_not_linked_to_stripe");

    const { key } = await buyer();
    const noUrl = await checkout(key, { amount_micros: 5_000_000 });
    expect(noUrl.status).toBe(400);
    expect(((await noUrl.json()) as ErrorBody).error).toMatchObject({
      code: "missing_required_parameter",
      param: "success_url",
    });

    const without = await stack.startWeb({ STRIPE_SECRET_KEY: "" });
    const off = await checkout(
      key,
      { amount_micros: 5_000_000, success_url: "https://a.example" },
      without.url,
    );
    expect(off.status).toBe(503);
    expect(((await off.json()) as ErrorBody).error.code).toBe("stripe_not_configured");
    await without.close();
  });

  it("creates a payment-mode Checkout Session for the amount, on the customer's Stripe customer", async () => {
    const { key, customerId, stripeCustomerId } = await buyer();
    const res = await checkout(key, {
      amount_micros: 12_340_000,
      success_url: "https://app.example/credits?ok=1",
      cancel_url: "https://app.example/credits",
    });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { id: string; url: string; amount_micros: number; expires_at: string };
    expect(Object.keys(body).sort()).toEqual(["amount_micros", "expires_at", "id", "url"]);
    expect(body).toMatchObject({ amount_micros: 12_340_000 });
    expect(body.url).toContain(body.id);
    expect(new Date(body.expires_at).getTime()).toBeGreaterThan(Date.now());
    const session = await sdk().checkout.sessions.retrieve(body.id);
    expect(session).toMatchObject({
      mode: "payment",
      status: "open",
      amount_total: 1234,
      currency: "usd",
      customer: stripeCustomerId,
      metadata: { meterline_customer_id: customerId, amount_micros: "12340000" },
      success_url: "https://app.example/credits?ok=1",
      cancel_url: "https://app.example/credits",
    });
  });
});

describe("checkout.session.completed", () => {
  it("grants once when delivered five times, out of order with the payment's payment_intent.succeeded", async () => {
    const { key, customerId } = await buyer();
    // The real-time counter exists before the grant: the grant must reach it once.
    expect(await stack.web.creditCounter.available(customerId)).toBe(0);
    const res = await checkout(key, { amount_micros: 25_000_000, success_url: "https://app.example/ok" });
    const { id: sessionId } = (await res.json()) as { id: string };

    // Paid: the emulator builds payment_intent.succeeded, then checkout.session.completed (neither is
    // delivered: this emulator has no webhook URL; the test delivers them, in its own order).
    await stack.stripe.completeCheckoutSession(sessionId);
    const paymentIntentId = String((await sdk().checkout.sessions.retrieve(sessionId)).payment_intent);
    const completed = eventAbout("checkout.session.completed", sessionId);
    const succeeded = eventAbout("payment_intent.succeeded", paymentIntentId);

    const send = async (id: string) => {
      const delivery = await stack.stripe.resendEvent(id, { url: webhookUrl() });
      expect(delivery.status).toBe(200);
    };
    await send(completed);
    await send(succeeded);
    await Promise.all([send(completed), send(completed), send(succeeded)]);
    await waitForEvents(stack.db, [completed, succeeded]);
    await send(completed);
    await send(completed);
    // The intake drops a repeated event id; the grant itself must hold against other events about
    // the same session (another event id, the async-payment event), delivered at the same time.
    const paidSession = (await sdk().checkout.sessions.retrieve(sessionId)) as unknown as Record<
      string,
      unknown
    >;
    const twins = [
      stack.stripe.buildEvent("checkout.session.completed", paidSession),
      stack.stripe.buildEvent("checkout.session.async_payment_succeeded", paidSession),
    ];
    const answers = await Promise.all(twins.map((built) => deliver(stack.url, built)));
    expect(answers.map((a) => a.status)).toEqual([200, 200]);
    await waitForEvents(stack.db, [completed, succeeded, ...twins.map((b) => String(b.event.id))]);

    const grants = await stack.db("credit_grants").where({ customer_id: customerId });
    expect(grants).toMatchObject([
      { source: "purchased", amount_micros: 25_000_000, reference: sessionId, remaining_micros: 25_000_000 },
    ]);
    expect(await stack.db("credit_entries").where({ customer_id: customerId })).toHaveLength(1);
    expect(await creditBalance(stack.db, customerId)).toBe(25_000_000);
    expect(await stack.web.creditCounter.available(customerId)).toBe(25_000_000);
    const events = await stack.db("stripe_events").whereIn("id", [completed, succeeded]).orderBy("type");
    expect(events).toMatchObject([
      { type: "checkout.session.completed", status: "processed", attempts: 1 },
      { type: "payment_intent.succeeded", status: "ignored", error: "not an automatic top-up" },
    ]);
    const balance = await fetch(`${stack.url}/admin/customers/${customerId}/credits`, {
      headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
    });
    expect(((await balance.json()) as { balance_micros: number }).balance_micros).toBe(25_000_000);
  });

  it("refuses a session whose amount differs from what meterline asked for, and ignores foreign ones", async () => {
    const { key, customerId } = await buyer();
    const res = await checkout(key, { amount_micros: 5_000_000, success_url: "https://app.example/ok" });
    const { id } = (await res.json()) as { id: string };
    const session = await sdk().checkout.sessions.retrieve(id);
    const paid = { ...session, status: "complete", payment_status: "paid" } as Record<string, unknown>;

    const tampered = stack.stripe.buildEvent("checkout.session.completed", { ...paid, amount_total: 50 });
    const foreign = stack.stripe.buildEvent("checkout.session.completed", {
      ...paid,
      id: "cs_test_other_shop",
      metadata: {},
    });
    const unpaid = stack.stripe.buildEvent("checkout.session.completed", {
      ...paid,
      id: "cs_test_async",
      payment_status: "unpaid",
    });
    for (const built of [tampered, foreign, unpaid])
      expect((await deliver(stack.url, built)).status).toBe(200);
    const ids = [tampered, foreign, unpaid].map((b) => String(b.event.id));
    await waitForEvents(stack.db, ids);
    const rows = await stack.db("stripe_events").whereIn("id", ids);
    const byId = (id: string) => rows.find((r: { id: string }) => r.id === id);
    expect(byId(ids[0]!)).toMatchObject({ status: "dead" });
    expect(byId(ids[0]!).error).toContain("differs from metadata amount_micros");
    expect(byId(ids[1]!)).toMatchObject({ status: "ignored", error: "not a meterline credit checkout" });
    expect(byId(ids[2]!)).toMatchObject({ status: "ignored" });
    expect(await creditBalance(stack.db, customerId)).toBe(0);
  });
});
