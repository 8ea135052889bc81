import Stripe from "stripe";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { startSignedEndpoint } from "./helpers/signed-endpoint.js";
import { startStripeEmulator, type StripeEmulator } from "../src/local/stripe-emulator.js";
import { waitFor } from "./helpers/wait.js";

// Top-ups meet Stripe through Checkout Sessions and off-session PaymentIntents: the emulator must
// answer the official SDK as Stripe does and send the signed events meterline grants credits on.
let endpoint: Awaited<ReturnType<typeof startSignedEndpoint>>;
let emu: StripeEmulator;
let stripe: Stripe;

beforeAll(async () => {
  endpoint = await startSignedEndpoint();
  emu = await startStripeEmulator({ webhookUrl: endpoint.url });
  stripe = new Stripe("sk_test_checkout", {
    host: "127.0.0.1",
    port: emu.port,
    protocol: "http",
    maxNetworkRetries: 0,
  });
});
afterAll(async () => {
  await emu.close();
  await endpoint.close();
});
beforeEach(() => {
  endpoint.received.length = 0;
});

/** The events delivered so far, each verified against the signing secret as a receiver would. */
const verified = (): Stripe.Event[] =>
  endpoint.received.map((r) => stripe.webhooks.constructEvent(r.body, r.signature, emu.webhookSecret));

const ofType = (type: string) => () => verified().filter((e) => e.type === type);

/** Events of `type` the emulator built about the object `id`, delivered or not. */
const eventsAbout = (type: string, id: string | undefined) =>
  emu.events(type).filter((e) => (e.data as { object: { id: string } }).object.id === id);

function topUpSession(customer: string, idempotencyKey?: string) {
  return stripe.checkout.sessions.create(
    {
      mode: "payment",
      customer,
      line_items: [
        {
          price_data: { currency: "usd", unit_amount: 2500, product_data: { name: "Credits" } },
          quantity: 2,
        },
      ],
      success_url: "https://app.example/credits?ok=1",
      cancel_url: "https://app.example/credits",
      client_reference_id: "topup_1",
      metadata: { meterline_topup: "topup_1" },
      payment_intent_data: { metadata: { meterline_topup: "topup_1" }, setup_future_usage: "off_session" },
    },
    idempotencyKey === undefined ? undefined : { idempotencyKey },
  );
}

describe("Checkout Sessions in the Stripe emulator", () => {
  it("creates an open session, then completing it sends a signed checkout.session.completed", async () => {
    const customer = emu.createCustomer({ email: "ada@example.com" }).id;
    const session = await topUpSession(customer);
    expect(session).toMatchObject({
      object: "checkout.session",
      status: "open",
      payment_status: "unpaid",
      amount_total: 5000,
      currency: "usd",
      customer,
      mode: "payment",
      metadata: { meterline_topup: "topup_1" },
      client_reference_id: "topup_1",
      payment_intent: null,
    });
    expect(session.id).toMatch(/^cs_test_/);
    expect(session.url).toContain(session.id);

    const { status, event } = await emu.completeCheckoutSession(session.id);
    expect(status).toBe(200);
    const [completed] = ofType("checkout.session.completed")();
    expect(completed?.id).toBe(event.id);
    const object = completed?.data.object as Stripe.Checkout.Session;
    expect(object).toMatchObject({ id: session.id, status: "complete", payment_status: "paid", customer });

    // Stripe also reports the session's payment: it carries payment_intent_data.metadata, and the
    // card it used is saved to the customer for later off-session top-ups.
    const intent = await stripe.paymentIntents.retrieve(String(object.payment_intent));
    expect(intent).toMatchObject({ status: "succeeded", amount_received: 5000, customer });
    expect(intent.metadata).toEqual({ meterline_topup: "topup_1" });
    expect(ofType("payment_intent.succeeded")().map((e) => e.data.object)).toMatchObject([{ id: intent.id }]);
    const cards = await stripe.customers.listPaymentMethods(customer, { type: "card" });
    expect(cards.data.map((pm) => pm.id)).toEqual([intent.payment_method]);
    expect(await stripe.checkout.sessions.retrieve(session.id)).toMatchObject({ status: "complete" });
  });

  it("delivers the same event again, signed anew, and through the control route", async () => {
    const customer = emu.createCustomer().id;
    const session = await topUpSession(customer);
    const page = await fetch(String(session.url));
    expect(await page.json()).toMatchObject({ session: { id: session.id, status: "open" } });
    const res = await fetch(`${session.url}/complete`, { method: "POST", body: "{}" });
    expect(res.status).toBe(200);
    const { event } = (await res.json()) as { event: { id: string } };
    await emu.resendEvent(event.id);
    await emu.resendEvent(event.id);
    const completed = ofType("checkout.session.completed")();
    expect(completed.map((e) => e.id)).toEqual([event.id, event.id, event.id]);
    await expect(emu.completeCheckoutSession(session.id)).rejects.toThrow(/no longer be paid/);
  });

  it("leaves the session open when the card is declined, and says so in payment_intent.payment_failed", async () => {
    const customer = emu.createCustomer().id;
    const session = await topUpSession(customer);
    await expect(
      emu.completeCheckoutSession(session.id, { card: "pm_card_chargeDeclined" }),
    ).rejects.toMatchObject({ status: 402 });
    expect(await stripe.checkout.sessions.retrieve(session.id)).toMatchObject({ status: "open" });
    expect(ofType("payment_intent.payment_failed")()).toHaveLength(1);
    expect(ofType("checkout.session.completed")()).toHaveLength(0);
    await emu.completeCheckoutSession(session.id);
    expect(ofType("checkout.session.completed")()).toHaveLength(1);
  });

  it("replays a create with the same Idempotency-Key and refuses other parameters under it", async () => {
    const customer = emu.createCustomer().id;
    const first = await topUpSession(customer, "topup-key-1");
    const again = await topUpSession(customer, "topup-key-1");
    expect(again.id).toBe(first.id);
    expect(again.lastResponse.headers["idempotent-replayed"]).toBe("true");
    const other = emu.createCustomer().id;
    await expect(topUpSession(other, "topup-key-1")).rejects.toBeInstanceOf(
      Stripe.errors.StripeIdempotencyError,
    );
  });

  it("refuses a session without line items or with an unknown customer", async () => {
    await expect(
      stripe.checkout.sessions.create({ mode: "payment", success_url: "https://app.example" }),
    ).rejects.toMatchObject({ type: "StripeInvalidRequestError", param: "line_items" });
    await expect(topUpSession("cus_missing")).rejects.toMatchObject({ code: "resource_missing" });
  });
});

/** A customer with a card saved by a completed Checkout, as an automatic top-up finds it. */
async function customerWithSavedCard(): Promise<{ customer: string; pm: string }> {
  const customer = emu.createCustomer().id;
  const session = await topUpSession(customer);
  await emu.completeCheckoutSession(session.id);
  const pm = (await stripe.customers.listPaymentMethods(customer)).data[0]?.id ?? "";
  endpoint.received.length = 0;
  return { customer, pm };
}

const offSession = (customer: string, pm: string, idempotencyKey: string) =>
  stripe.paymentIntents.create(
    {
      amount: 2000,
      currency: "usd",
      customer,
      payment_method: pm,
      off_session: true,
      confirm: true,
      metadata: { meterline_auto_topup: idempotencyKey },
    },
    { idempotencyKey },
  );

describe("off-session PaymentIntents in the Stripe emulator", () => {
  it("charges the saved card and sends payment_intent.succeeded once per Idempotency-Key", async () => {
    const { customer, pm } = await customerWithSavedCard();
    const intent = await offSession(customer, pm, "auto-topup-1");
    expect(intent).toMatchObject({
      status: "succeeded",
      amount: 2000,
      amount_received: 2000,
      payment_method: pm,
    });
    expect((await offSession(customer, pm, "auto-topup-1")).id).toBe(intent.id);
    const event = await waitFor(() => ofType("payment_intent.succeeded")()[0], {
      what: "payment_intent.succeeded",
    });
    expect(event.data.object).toMatchObject({
      id: intent.id,
      metadata: { meterline_auto_topup: "auto-topup-1" },
    });
    expect(await stripe.paymentIntents.retrieve(intent.id)).toMatchObject({ status: "succeeded" });
    expect(eventsAbout("payment_intent.succeeded", intent.id)).toHaveLength(1);
  });

  it("declines pm_card_chargeDeclined with a StripeCardError carrying the PaymentIntent", async () => {
    const customer = emu.createCustomer().id;
    const err: unknown = await offSession(customer, "pm_card_chargeDeclined", "auto-topup-2").catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(Stripe.errors.StripeCardError);
    const declined = err as Stripe.errors.StripeCardError;
    expect(declined).toMatchObject({
      statusCode: 402,
      code: "card_declined",
      decline_code: "generic_decline",
    });
    expect(declined.payment_intent).toMatchObject({ status: "requires_payment_method", customer });
    const failed = await waitFor(() => ofType("payment_intent.payment_failed")()[0], {
      what: "payment_intent.payment_failed",
    });
    expect(failed.data.object).toMatchObject({
      id: declined.payment_intent?.id,
      last_payment_error: { code: "card_declined" },
    });
  });

  it("declines a saved card set to fail, and a retry under the key answers the same decline", async () => {
    const { customer, pm } = await customerWithSavedCard();
    expect(emu.setCardFailing(customer)).toBe(1);
    const first = await offSession(customer, pm, "auto-topup-3").catch((e: unknown) => e);
    const retry = await offSession(customer, pm, "auto-topup-3").catch((e: unknown) => e);
    expect(first).toBeInstanceOf(Stripe.errors.StripeCardError);
    expect(retry).toBeInstanceOf(Stripe.errors.StripeCardError);
    const id = (first as Stripe.errors.StripeCardError).payment_intent?.id;
    expect((retry as Stripe.errors.StripeCardError).payment_intent?.id).toBe(id);
    await waitFor(() => ofType("payment_intent.payment_failed")().length, { what: "payment_failed" });
    expect(eventsAbout("payment_intent.payment_failed", id)).toHaveLength(1);

    emu.setCardFailing(customer, false);
    expect(await offSession(customer, pm, "auto-topup-4")).toMatchObject({ status: "succeeded" });
  });

  it("confirms in two steps, and refuses to confirm without a card", async () => {
    const { customer, pm } = await customerWithSavedCard();
    const params = { amount: 1500, currency: "usd", customer };
    await expect(stripe.paymentIntents.create({ ...params, confirm: true })).rejects.toMatchObject({
      code: "payment_intent_unexpected_state",
      param: "payment_method",
    });
    const intent = await stripe.paymentIntents.create({ ...params, payment_method: pm });
    expect(intent.status).toBe("requires_confirmation");
    expect(await stripe.paymentIntents.confirm(intent.id, { off_session: true })).toMatchObject({
      status: "succeeded",
      amount_received: 1500,
    });
    await waitFor(() => eventsAbout("payment_intent.succeeded", intent.id).length, { what: "succeeded" });
  });
});
