import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import Stripe from "stripe";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import {
  invoiceObject,
  parseForm,
  startStripeEmulator,
  subscriptionObject,
  type StripeEmulator,
} from "../src/local/stripe-emulator.js";

let emu: StripeEmulator;
let stripe: Stripe;

const client = (key = "sk_test_123", maxNetworkRetries = 0): Stripe =>
  new Stripe(key, { host: "127.0.0.1", port: emu.port, protocol: "http", maxNetworkRetries });

async function failure(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (err) {
    if (err instanceof Error) return err;
    throw new Error(`non-Error rejection: ${String(err)}`);
  }
  throw new Error("expected the call to fail");
}

const now = (): number => Math.floor(Date.now() / 1000);
let seq = 0;
const uniq = (prefix: string): string => `${prefix}-${Date.now()}-${++seq}`;

beforeAll(async () => {
  emu = await startStripeEmulator({ webhookSecret: "whsec_test_secret" });
  stripe = client();
});
afterAll(async () => {
  await emu.close();
});
beforeEach(() => {
  emu.clearFaults();
});

describe("form parsing", () => {
  it("decodes stripe-node's nested and indexed brackets", () => {
    const p = parseForm(
      "payload[stripe_customer_id]=cus_1&lookup_keys[]=a&lookup_keys[]=b&tiers[0][up_to]=100&tiers[1][up_to]=inf&name=a%20b+c",
    );
    expect(p).toEqual({
      payload: { stripe_customer_id: "cus_1" },
      lookup_keys: ["a", "b"],
      tiers: [{ up_to: "100" }, { up_to: "inf" }],
      name: "a b c",
    });
    expect(parseForm("__proto__[x]=1&a=1")).toEqual({ a: "1" });
  });
});

describe("meter events", () => {
  it("accepts an event, counts the call and returns Stripe's shape", async () => {
    const { id: customer } = emu.createCustomer({ email: "a@example.com" });
    const before = emu.calls["POST /v1/billing/meter_events"] ?? 0;
    const res = await stripe.billing.meterEvents.create({
      event_name: "tokens_a",
      payload: { stripe_customer_id: customer, value: "42" },
      identifier: uniq("ev"),
    });
    expect(res.object).toBe("billing.meter_event");
    expect(res.payload).toEqual({ stripe_customer_id: customer, value: "42" });
    expect(res.lastResponse.requestId).toMatch(/^req_/);
    expect(emu.calls["POST /v1/billing/meter_events"]).toBe(before + 1);
    expect(emu.totalFor(customer, "tokens_a")).toBe(42);
    expect(emu.meterEvents().find((e) => e.identifier === res.identifier)).toMatchObject({
      customer,
      value: 42,
    });
  });

  it("rejects a duplicate identifier with stripe-should-retry: false", async () => {
    const { id: customer } = emu.createCustomer();
    const identifier = uniq("dup");
    const params = {
      event_name: "tokens_b",
      payload: { stripe_customer_id: customer, value: "5" },
      identifier,
    };
    await stripe.billing.meterEvents.create(params);
    const err = await failure(stripe.billing.meterEvents.create(params));
    expect(err).toBeInstanceOf(Stripe.errors.StripeInvalidRequestError);
    expect(err.message).toBe(`An event already exists with identifier ${identifier}.`);
    expect((err as Stripe.errors.StripeError).headers?.["stripe-should-retry"]).toBe("false");
    expect(emu.totalFor(customer)).toBe(5);
  });

  it("enforces the timestamp window (35 days back, 5 minutes ahead)", async () => {
    const { id: customer } = emu.createCustomer();
    const send = (timestamp: number) =>
      stripe.billing.meterEvents.create({
        event_name: "tokens_c",
        payload: { stripe_customer_id: customer, value: "1" },
        timestamp,
      });
    const old = await failure(send(now() - 36 * 86_400));
    expect(old).toBeInstanceOf(Stripe.errors.StripeInvalidRequestError);
    expect((old as Stripe.errors.StripeError).statusCode).toBe(400);
    expect((old as Stripe.errors.StripeError).param).toBe("timestamp");
    expect(await failure(send(now() + 600))).toBeInstanceOf(Stripe.errors.StripeInvalidRequestError);
    await send(now() - 34 * 86_400);
    expect(emu.totalFor(customer)).toBe(1);
  });

  it("answers an unknown customer and a non-integer value with 400", async () => {
    const unknown = await failure(
      stripe.billing.meterEvents.create({
        event_name: "tokens_d",
        payload: { stripe_customer_id: "cus_missing", value: "1" },
      }),
    );
    expect(unknown).toBeInstanceOf(Stripe.errors.StripeInvalidRequestError);
    expect((unknown as Stripe.errors.StripeError).statusCode).toBe(400);
    expect((unknown as Stripe.errors.StripeError).code).toBe("resource_missing");
    expect(unknown.message).toBe("No such customer: 'cus_missing'");

    const { id: customer } = emu.createCustomer();
    const decimal = await failure(
      stripe.billing.meterEvents.create({
        event_name: "tokens_d",
        payload: { stripe_customer_id: customer, value: "1.5" },
      }),
    );
    expect((decimal as Stripe.errors.StripeError).statusCode).toBe(400);
    expect(emu.totalFor(customer)).toBe(0);
  });

  it("rejects a second concurrent call for the same customer and meter with 429", async () => {
    const { id: customer } = emu.createCustomer();
    const { id: other } = emu.createCustomer();
    emu.resetStats();
    emu.setFaults({ slowMs: 200 });
    const send = (c: string) =>
      stripe.billing.meterEvents.create({
        event_name: "tokens_e",
        payload: { stripe_customer_id: c, value: "3" },
      });
    const results = await Promise.allSettled([send(customer), send(customer)]);
    const rejected = results.filter((r) => r.status === "rejected");
    expect(rejected).toHaveLength(1);
    const reason: unknown = rejected[0]?.status === "rejected" ? rejected[0].reason : undefined;
    expect(reason).toBeInstanceOf(Stripe.errors.StripeRateLimitError);
    expect((reason as Stripe.errors.StripeError).headers?.["stripe-rate-limited-reason"]).toBeTruthy();
    expect(emu.totalFor(customer)).toBe(3);
    expect(emu.concurrencyViolations).toBe(1);
    expect(emu.maxConcurrentPerCustomerMeter).toBe(2);

    emu.resetStats();
    await Promise.all([send(customer), send(other)]); // different customers may overlap
    expect(emu.concurrencyViolations).toBe(0);
    expect(emu.maxConcurrentPerCustomerMeter).toBe(1);
  });

  it("failNext(3, 500) gives three StripeAPIErrors, then success", async () => {
    const { id: customer } = emu.createCustomer();
    emu.failNext(3, 500, { path: "/v1/billing/meter_events" });
    const before = emu.calls["POST /v1/billing/meter_events"] ?? 0;
    const send = () =>
      stripe.billing.meterEvents.create({
        event_name: "tokens_f",
        payload: { stripe_customer_id: customer, value: "2" },
      });
    for (let i = 0; i < 3; i++) {
      const err = await failure(send());
      expect(err).toBeInstanceOf(Stripe.errors.StripeAPIError);
      expect(err.message).toBe("An unknown error occurred");
    }
    await send();
    expect(emu.calls["POST /v1/billing/meter_events"]).toBe(before + 4);
    expect(emu.totalFor(customer)).toBe(2);
  });

  it("replays an idempotent request and refuses the key for other parameters", async () => {
    const { id: customer } = emu.createCustomer();
    const idempotencyKey = uniq("idem");
    const params = { event_name: "tokens_g", payload: { stripe_customer_id: customer, value: "7" } };
    const first = await stripe.billing.meterEvents.create(params, { idempotencyKey });
    const second = await stripe.billing.meterEvents.create(params, { idempotencyKey });
    expect(second.identifier).toBe(first.identifier);
    expect(first.lastResponse.headers["idempotent-replayed"]).toBeUndefined();
    expect(second.lastResponse.headers["idempotent-replayed"]).toBe("true");
    expect(emu.totalFor(customer)).toBe(7);

    const changed = { ...params, payload: { ...params.payload, value: "8" } };
    const err = await failure(stripe.billing.meterEvents.create(changed, { idempotencyKey }));
    expect(err).toBeInstanceOf(Stripe.errors.StripeIdempotencyError);
    expect(emu.totalFor(customer)).toBe(7);
  });

  it("a response lost after handling is recovered by the SDK's retry with the same key", async () => {
    const { id: customer } = emu.createCustomer();
    emu.failNext(1, "drop-after", { path: "POST /v1/billing/meter_events" });
    const before = emu.calls["POST /v1/billing/meter_events"] ?? 0;
    // stripe-node retries a closed connection once even with maxNetworkRetries 0, reusing its key.
    const res = await stripe.billing.meterEvents.create({
      event_name: "tokens_h",
      payload: { stripe_customer_id: customer, value: "9" },
    });
    expect(res.lastResponse.headers["idempotent-replayed"]).toBe("true");
    expect(emu.calls["POST /v1/billing/meter_events"]).toBe(before + 2);
    expect(emu.totalFor(customer)).toBe(9);
  });

  it("a dropped connection is retried once by stripe-node, then surfaces as StripeConnectionError", async () => {
    const { id: customer } = emu.createCustomer();
    emu.failNext(2, "drop", { path: "/v1/billing/meter_events" });
    const before = emu.calls["POST /v1/billing/meter_events"] ?? 0;
    const err = await failure(
      stripe.billing.meterEvents.create({
        event_name: "tokens_n",
        payload: { stripe_customer_id: customer, value: "1" },
      }),
    );
    expect(err).toBeInstanceOf(Stripe.errors.StripeConnectionError);
    expect(emu.calls["POST /v1/billing/meter_events"]).toBe(before + 2);
    expect(emu.totalFor(customer)).toBe(0);
  });

  it("removeMeterEvent forgets one event", async () => {
    const { id: customer } = emu.createCustomer();
    const keep = uniq("keep");
    const forget = uniq("forget");
    for (const identifier of [keep, forget]) {
      await stripe.billing.meterEvents.create({
        event_name: "tokens_i",
        payload: { stripe_customer_id: customer, value: "10" },
        identifier,
      });
    }
    expect(emu.totalFor(customer)).toBe(20);
    emu.removeMeterEvent(forget);
    expect(emu.totalFor(customer)).toBe(10);
  });

  it("counts a resent identifier again once the 24-hour windows have passed (expireIdentifiers)", async () => {
    const { id: customer } = emu.createCustomer();
    const identifier = uniq("late");
    const idempotencyKey = uniq("late-key");
    const params = {
      event_name: "tokens_w",
      payload: { stripe_customer_id: customer, value: "6" },
      identifier,
      timestamp: now() - 120,
    };
    await stripe.billing.meterEvents.create(params, { idempotencyKey });
    const replayed = await stripe.billing.meterEvents.create(params, { idempotencyKey });
    expect(replayed.lastResponse.headers["idempotent-replayed"]).toBe("true");
    expect(emu.totalFor(customer)).toBe(6);

    emu.expireIdentifiers();
    const resent = await stripe.billing.meterEvents.create(params, { idempotencyKey });
    expect(resent.lastResponse.headers["idempotent-replayed"]).toBeUndefined();
    expect(emu.totalFor(customer)).toBe(12);
    const meter = await stripe.billing.meters.create({
      display_name: "Tokens W",
      event_name: "tokens_w",
      default_aggregation: { formula: "sum" },
    });
    const start = Math.floor((now() - 3600) / 60) * 60;
    const summaries = await stripe.billing.meters.listEventSummaries(meter.id, {
      customer,
      start_time: start,
      end_time: start + 7200,
    });
    expect(summaries.data.map((s) => s.aggregated_value)).toEqual([12]);
    // Within the new window the identifier is deduplicated again.
    const err = await failure(stripe.billing.meterEvents.create(params));
    expect(err.message).toBe(`An event already exists with identifier ${identifier}.`);
  });
});

describe("meters and summaries", () => {
  it("creates and lists meters, refusing a second active meter for an event name", async () => {
    const eventName = uniq("meter");
    const meter = await stripe.billing.meters.create({
      display_name: "Tokens",
      event_name: eventName,
      default_aggregation: { formula: "sum" },
      customer_mapping: { event_payload_key: "stripe_customer_id", type: "by_id" },
      value_settings: { event_payload_key: "value" },
    });
    expect(meter.id).toMatch(/^mtr_/);
    expect(meter.status).toBe("active");
    const again = await failure(
      stripe.billing.meters.create({
        display_name: "X",
        event_name: eventName,
        default_aggregation: { formula: "sum" },
      }),
    );
    expect(again).toBeInstanceOf(Stripe.errors.StripeInvalidRequestError);
    const active = await stripe.billing.meters.list({ status: "active", limit: 100 });
    expect(active.data.map((m) => m.id)).toContain(meter.id);
    const inactive = await stripe.billing.meters.list({ status: "inactive" });
    expect(inactive.data.map((m) => m.id)).not.toContain(meter.id);
  });

  it("sums accepted events per hour window, newest window first", async () => {
    const eventName = uniq("summ");
    const meter = await stripe.billing.meters.create({
      display_name: "Tokens",
      event_name: eventName,
      default_aggregation: { formula: "sum" },
    });
    const { id: customer } = emu.createCustomer();
    const { id: other } = emu.createCustomer();
    const base = Math.floor(now() / 3600) * 3600 - 3 * 3600;
    const events: Array<[string, number, number]> = [
      [customer, base + 10, 5],
      [customer, base + 100, 7],
      [customer, base + 3600 + 5, 11],
      [other, base + 20, 1000],
    ];
    for (const [c, timestamp, value] of events) {
      await stripe.billing.meterEvents.create({
        event_name: eventName,
        payload: { stripe_customer_id: c, value: String(value) },
        timestamp,
      });
    }
    const hourly = await stripe.billing.meters.listEventSummaries(meter.id, {
      customer,
      start_time: base,
      end_time: base + 3 * 3600,
      value_grouping_window: "hour",
    });
    expect(hourly.data.map((s) => [s.start_time, s.aggregated_value])).toEqual([
      [base + 7200, 0],
      [base + 3600, 11],
      [base, 12],
    ]);
    expect(hourly.data[0]).toMatchObject({
      object: "billing.meter_event_summary",
      meter: meter.id,
      livemode: false,
    });
    const whole = await stripe.billing.meters.listEventSummaries(meter.id, {
      customer,
      start_time: base,
      end_time: base + 3 * 3600,
    });
    expect(whole.data.map((s) => s.aggregated_value)).toEqual([23]);
    const unaligned = await failure(
      stripe.billing.meters.listEventSummaries(meter.id, {
        customer,
        start_time: base + 30,
        end_time: base + 3600,
      }),
    );
    expect((unaligned as Stripe.errors.StripeError).statusCode).toBe(400);
  });
});

describe("catalog", () => {
  it("creates graduated tiered metered prices and finds them by lookup key", async () => {
    const product = await stripe.products.create({ name: "Pro" });
    const meter = await stripe.billing.meters.create({
      display_name: "Tokens",
      event_name: uniq("price-meter"),
      default_aggregation: { formula: "sum" },
    });
    const lookupKey = uniq("pro_tokens");
    const price = await stripe.prices.create({
      currency: "usd",
      product: product.id,
      recurring: { interval: "month", usage_type: "metered", meter: meter.id },
      billing_scheme: "tiered",
      tiers_mode: "graduated",
      tiers: [
        { up_to: 100_000, unit_amount: 0 },
        { up_to: "inf", unit_amount_decimal: Stripe.Decimal.from("0.002") },
      ],
      lookup_key: lookupKey,
    });
    expect(price.id).toMatch(/^price_/);
    expect(price.recurring?.meter).toBe(meter.id);
    expect(price.tiers).toBeUndefined(); // only with expand, like Stripe

    const found = await stripe.prices.list({
      lookup_keys: [lookupKey],
      active: true,
      expand: ["data.tiers"],
    });
    expect(found.data.map((p) => p.id)).toEqual([price.id]);
    expect(found.data[0]?.tiers?.map((t) => t.up_to)).toEqual([100_000, null]);
    expect(String(found.data[0]?.tiers?.[1]?.unit_amount_decimal)).toBe("0.002");

    const withTransform = await failure(
      stripe.prices.create({
        currency: "usd",
        product: product.id,
        recurring: { interval: "month", usage_type: "metered", meter: meter.id },
        billing_scheme: "tiered",
        tiers_mode: "graduated",
        tiers: [{ up_to: "inf", unit_amount: 1 }],
        transform_quantity: { divide_by: 1000, round: "up" },
      }),
    );
    expect((withTransform as Stripe.errors.StripeError).param).toBe("transform_quantity");

    const licensed = {
      currency: "usd",
      product: product.id,
      unit_amount: 2000,
      recurring: { interval: "month" as const },
    };
    const taken = await failure(stripe.prices.create({ ...licensed, lookup_key: lookupKey }));
    expect(taken).toBeInstanceOf(Stripe.errors.StripeInvalidRequestError);
    const moved = await stripe.prices.create({
      ...licensed,
      lookup_key: lookupKey,
      transfer_lookup_key: true,
    });
    const after = await stripe.prices.list({ lookup_keys: [lookupKey] });
    expect(after.data.map((p) => p.id)).toEqual([moved.id]);
  });
});

describe("auth, routing and control", () => {
  it("requires a secret key and answers unknown routes with 404", async () => {
    const bad = await failure(client("pk_test_123").billing.meters.list());
    expect(bad).toBeInstanceOf(Stripe.errors.StripeAuthenticationError);
    const res = await fetch(`${emu.url}/v1/billing/meters`);
    expect(res.status).toBe(401);
    expect(res.headers.get("request-id")).toMatch(/^req_/);
    const unknown = await failure(stripe.rawRequest("GET", "/v1/nothing_here"));
    expect(unknown).toBeInstanceOf(Stripe.errors.StripeInvalidRequestError);
    expect(unknown.message).toContain("Unrecognized request URL");
  });

  it("answers the Stripe calls meterline does not make with 404", async () => {
    const { id: customer } = emu.createCustomer();
    const unmodelled = [
      stripe.customers.create({ email: "x@example.com" }),
      stripe.subscriptions.create({ customer, items: [{ price: "price_x" }] }),
      stripe.billing.meterEventAdjustments.create({
        event_name: "tokens_a",
        type: "cancel",
        cancel: { identifier: "x" },
      }),
    ];
    for (const call of unmodelled) {
      const err = await failure(call);
      expect((err as Stripe.errors.StripeError).statusCode).toBe(404);
      expect(err.message).toContain("Unrecognized request URL");
    }
  });

  it("fails the next call with failNext and lists meter events over the control endpoint", async () => {
    const { id: customer } = emu.createCustomer();
    emu.failNext(1, 429, { path: "/v1/billing/meter_events" });
    const params = { event_name: "tokens_k", payload: { stripe_customer_id: customer, value: "4" } };
    const limited = await failure(stripe.billing.meterEvents.create(params));
    expect(limited).toBeInstanceOf(Stripe.errors.StripeRateLimitError);
    await stripe.billing.meterEvents.create(params);
    const listed = (await (await fetch(`${emu.url}/_emulator/meter_events`)).json()) as {
      data: Array<{ customer: string; value: number }>;
    };
    expect(listed.data.filter((e) => e.customer === customer).map((e) => e.value)).toEqual([4]);
  });

  it("applies random faults deterministically from a seed", async () => {
    const { id: customer } = emu.createCustomer();
    const outcomes = async (): Promise<string[]> => {
      emu.setFaults({ rate500: 0.5, seed: 42 });
      const out: string[] = [];
      for (let i = 0; i < 12; i++) {
        const p = stripe.billing.meterEvents.create({
          event_name: "tokens_l",
          payload: { stripe_customer_id: customer, value: "1" },
        });
        out.push(
          await p.then(
            () => "ok",
            (e: unknown) => (e instanceof Stripe.errors.StripeAPIError ? "500" : "other"),
          ),
        );
      }
      return out;
    };
    const a = await outcomes();
    const b = await outcomes();
    expect(a).toEqual(b);
    expect(a).toContain("ok");
    expect(a).toContain("500");
    expect(a).not.toContain("other");
  });
});

describe("v2 meter event stream", () => {
  it("accepts events with a session token and expires the session", async () => {
    const { id: customer } = emu.createCustomer();
    const session = await stripe.v2.billing.meterEventSession.create();
    const streamClient = client(session.authentication_token);
    await streamClient.v2.billing.meterEventStream.create({
      events: [
        { event_name: "tokens_m", payload: { stripe_customer_id: customer, value: "6" } },
        { event_name: "tokens_m", payload: { stripe_customer_id: "cus_unknown", value: "6" } },
      ],
    });
    expect(emu.totalFor(customer, "tokens_m")).toBe(6);
    expect(emu.errorReports().some((r) => r.code === "meter_event_customer_not_found")).toBe(true);
    emu.expireMeterEventSessions();
    const expired = await failure(
      streamClient.v2.billing.meterEventStream.create({
        events: [{ event_name: "tokens_m", payload: { stripe_customer_id: customer, value: "1" } }],
      }),
    );
    expect(expired).toBeInstanceOf(Stripe.errors.TemporarySessionExpiredError);
  });
});

describe("webhooks", () => {
  it("buildEvent signs a payload that constructEvent verifies", () => {
    const sub = subscriptionObject({
      customer: "cus_1",
      status: "active",
      priceId: "price_1",
      periodStart: 1_700_000_000,
      periodEnd: 1_702_592_000,
    });
    const { payload, header, event } = emu.buildEvent("customer.subscription.updated", sub, {
      previousAttributes: { status: "trialing" },
    });
    const verified = stripe.webhooks.constructEvent(payload, header, "whsec_test_secret");
    expect(verified.id).toBe(event.id);
    expect(verified.type).toBe("customer.subscription.updated");
    expect(verified.api_version).toBe("2026-10-28.endive");
    expect(verified.data.previous_attributes).toEqual({ status: "trialing" });
    const item = (verified.data.object as Stripe.Subscription).items.data[0];
    expect(item?.current_period_end).toBe(1_702_592_000);
    expect(() =>
      stripe.webhooks.constructEvent(payload.replace("active", "canceled"), header, "whsec_test_secret"),
    ).toThrow(Stripe.errors.StripeSignatureVerificationError);
  });

  it("stores webhook objects so a re-fetch returns them", async () => {
    const { id: customer } = emu.createCustomer();
    const sub = subscriptionObject({
      customer,
      status: "past_due",
      priceId: "price_x",
      periodStart: 1,
      periodEnd: 2,
    });
    emu.buildEvent("customer.subscription.updated", sub);
    expect((await stripe.subscriptions.retrieve(String(sub.id))).status).toBe("past_due");
    const missing = await failure(stripe.subscriptions.retrieve("sub_missing"));
    expect((missing as Stripe.errors.StripeError).statusCode).toBe(404);
  });

  it("sendWebhook posts a signed event to a local server", async () => {
    let received: { body: string; signature: string } | undefined;
    const server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        received = {
          body: Buffer.concat(chunks).toString("utf8"),
          signature: String(req.headers["stripe-signature"]),
        };
        res.writeHead(200).end("ok");
      });
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/webhooks/stripe`;
      const invoice = invoiceObject({
        customer: "cus_2",
        subscription: "sub_2",
        status: "open",
        amount_due: 1234,
      });
      const { status, event } = await emu.sendWebhook("invoice.created", invoice, { url });
      expect(status).toBe(200);
      if (!received) throw new Error("webhook not received");
      const verified = stripe.webhooks.constructEvent(received.body, received.signature, emu.webhookSecret);
      expect(verified.id).toBe(event.id);
      const inv = verified.data.object as Stripe.Invoice;
      expect(inv.parent?.subscription_details?.subscription).toBe("sub_2");
      expect(inv).not.toHaveProperty("subscription");
    } finally {
      await new Promise<void>((r) => server.close(() => r()));
    }
  });
});
