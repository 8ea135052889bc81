import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import Stripe from "stripe";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startStripeEmulator, type StripeEmulator } from "../src/local/stripe-emulator.js";

// README "Stripe webhooks → Locally without one": a newcomer under `npm start` sends signed events
// with `curl $EMU/_emulator/webhooks`.
let received: Array<{ body: string; signature: string }> = [];
const endpoint = createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on("data", (c: Buffer) => chunks.push(c));
  req.on("end", () => {
    received.push({
      body: Buffer.concat(chunks).toString("utf8"),
      signature: String(req.headers["stripe-signature"]),
    });
    res.writeHead(200).end("ok");
  });
});
let emu: StripeEmulator;

beforeAll(async () => {
  await new Promise<void>((r) => endpoint.listen(0, "127.0.0.1", r));
  const port = (endpoint.address() as AddressInfo).port;
  emu = await startStripeEmulator({ webhookUrl: `http://127.0.0.1:${port}/webhooks/stripe` });
});
afterAll(async () => {
  await emu.close();
  await new Promise<void>((r) => endpoint.close(() => r()));
});

const post = (body: string) =>
  fetch(`${emu.url}/_emulator/webhooks`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body,
  });

describe("the Stripe emulator's webhook control route", () => {
  it("signs and delivers the event it is given", async () => {
    received = [];
    const object = { id: "in_acme", object: "invoice", customer: "cus_acme" };
    const res = await post(JSON.stringify({ type: "invoice.paid", object }));
    expect(res.status).toBe(200);
    const { status, event } = (await res.json()) as { status: number; event: { id: string } };
    expect(status).toBe(200);
    expect(received).toHaveLength(1);
    const stripe = new Stripe("sk_test_x");
    const verified = stripe.webhooks.constructEvent(
      received[0]!.body,
      received[0]!.signature,
      emu.webhookSecret,
    );
    expect(verified).toMatchObject({
      id: event.id,
      type: "invoice.paid",
      data: { object: { id: "in_acme" } },
    });
  });

  it("refuses a body without type and object", async () => {
    received = [];
    for (const body of [
      "not json",
      JSON.stringify({ type: "invoice.paid" }),
      JSON.stringify({ object: {} }),
    ]) {
      const res = await post(body);
      expect(res.status).toBe(400);
    }
    expect(received).toHaveLength(0);
  });
});
