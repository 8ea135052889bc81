import Stripe from "stripe";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startSignedEndpoint } from "./helpers/signed-endpoint.js";
import { startStripeEmulator, type StripeEmulator } from "../src/local/stripe-emulator.js";

// README "Stripe webhooks → Locally without one": a newcomer under `npm start` sends signed events
// with `curl $EMU/_emulator/webhooks`.
let endpoint: Awaited<ReturnType<typeof startSignedEndpoint>>;
let emu: StripeEmulator;

beforeAll(async () => {
  endpoint = await startSignedEndpoint();
  emu = await startStripeEmulator({ webhookUrl: endpoint.url });
});
afterAll(async () => {
  await emu.close();
  await endpoint.close();
});

const post = (body: string) =>
  fetch(`${emu.url}/_emulator/webhooks`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body,
  });

describe("the Stripe emulator's webhook control route", () => {
  it("signs and delivers the event it is given", async () => {
    endpoint.received.length = 0;
    const object = { id: "in_acme", object: "invoice", customer: "cus_acme" };
    const res = await post(JSON.stringify({ type: "invoice.paid", object }));
    expect(res.status).toBe(200);
    const { status, event } = (await res.json()) as { status: number; event: { id: string } };
    expect(status).toBe(200);
    expect(endpoint.received).toHaveLength(1);
    const stripe = new Stripe("sk_test_x");
    const verified = stripe.webhooks.constructEvent(
      endpoint.received[0]!.body,
      endpoint.received[0]!.signature,
      emu.webhookSecret,
    );
    expect(verified).toMatchObject({
      id: event.id,
      type: "invoice.paid",
      data: { object: { id: "in_acme" } },
    });
  });

  it("refuses a body without type and object", async () => {
    endpoint.received.length = 0;
    for (const body of [
      "not json",
      JSON.stringify({ type: "invoice.paid" }),
      JSON.stringify({ object: {} }),
    ]) {
      const res = await post(body);
      expect(res.status).toBe(400);
    }
    expect(endpoint.received).toHaveLength(0);
  });
});
