import { beforeAll, describe, expect, it } from "vitest";
import { createCustomer } from "../src/billing/customers/customers.js";
import { portalQuery, portalSecret, signPortalLink } from "../src/billing/customers/portal-links.js";
import { flushUsage } from "../src/billing/reporting/usage-flush.js";
import { setupStripe } from "../src/billing/reporting/stripe-setup.js";
import { subscriptionObject } from "../src/local/stripe-emulator.js";
import { addUsage, useReportingStack } from "./helpers/reporting.js";
import { waitFor } from "./helpers/stack.js";
import { deliver, waitForEvents } from "./helpers/stripe-webhooks.js";

// The portal's invoice preview is Stripe's own (invoices.createPreview) where the customer has a
// subscription, and meterline's rating when there is none or Stripe fails or is slow.
const TIMEOUT_MS = 1_000;
const { stack, emu } = useReportingStack({ env: { PORTAL_STRIPE_TIMEOUT_MS: String(TIMEOUT_MS) } });
const PREVIEW = "POST /v1/invoices/create_preview";
const DAY = 86_400;

let prices: Record<string, string>;
beforeAll(async () => {
  const setup = await setupStripe({ ...stack.web, stripe: stack.web.stripe! });
  prices = Object.fromEntries(
    Object.entries(setup.plans.find((p) => p.planId === "team")!.prices).map(([role, p]) => [role, p.id]),
  );
});

interface Preview {
  source: string;
  currency: string;
  lines: Array<{ description: string; amount_micros: number }>;
  total_micros: number;
}

async function portal(customerId: string) {
  const query = portalQuery(signPortalLink(portalSecret(stack.config)!, customerId));
  const res = await fetch(`${stack.url}/portal/data?${query}`);
  expect(res.status).toBe(200);
  const data = (await res.json()) as { invoice_preview: Preview; charges: { total_micros: number } };
  const page = await (await fetch(`${stack.url}/portal?${query}`)).text();
  return { ...data, page };
}

/** A Team-plan customer linked to Stripe, subscribed there (applied through a signed webhook). */
async function subscribedCustomer() {
  const stripeCustomerId = emu.createCustomer().id;
  const customer = await createCustomer(stack.db, { name: "Previewed Co", planId: "team", stripeCustomerId });
  const now = Math.floor(Date.now() / 1000);
  const sub = subscriptionObject({
    customer: stripeCustomerId,
    status: "active",
    priceId: "",
    items: [{ price: prices.base!, quantity: 1 }, { price: prices.usage! }],
    periodStart: now - DAY,
    periodEnd: now + 29 * DAY,
  });
  const built = emu.buildEvent("customer.subscription.created", sub);
  expect((await deliver(stack.url, built)).status).toBe(200);
  await waitForEvents(stack.db, [String(built.event.id)]);
  return { customerId: customer.id, stripeCustomerId, subscription: String(sub.id) };
}

/** Records usage and reports it to the emulator, waiting until the emulator holds all of it. */
async function usageReported(customerId: string, stripeCustomerId: string, rows: number, tokens: number) {
  await addUsage(stack.db, customerId, rows, tokens);
  await flushUsage(stack.web, { customerId });
  await waitFor(() => emu.totalFor(stripeCustomerId) === rows * tokens, { what: "the usage in Stripe" });
}

describe("the portal's invoice preview", () => {
  it("shows Stripe's preview of the subscription, in micro-dollars, where the customer has one", async () => {
    const c = await subscribedCustomer();
    await usageReported(c.customerId, c.stripeCustomerId, 3, 12_345);
    const expected = await stack.web.stripe!.invoices.createPreview({
      customer: c.stripeCustomerId,
      subscription: c.subscription,
    });
    // $50 base fee + 37,035 tokens at $1 per 1M = 3.7035¢, which Stripe rounds to 4¢.
    expect(expected.total).toBe(5_004);

    const data = await portal(c.customerId);
    expect(data.invoice_preview).toEqual({
      source: "stripe",
      currency: "usd",
      lines: expected.lines.data.map((l) => ({
        description: l.description,
        amount_micros: l.amount * 10_000,
      })),
      total_micros: 50_040_000,
    });
    expect(data.invoice_preview.lines.map((l) => l.amount_micros)).toEqual([50_000_000, 40_000]);
    // meterline's own rating of the same usage is exact to the micro-dollar: not what is shown.
    expect(data.charges.total_micros).not.toBe(50_040_000);
    expect(data.page).toContain('data-source="stripe"');
    expect(data.page).toContain('<th class="n">$50.04</th>');
  }, 60_000);

  it("falls back to meterline's rating when Stripe answers an error or is slower than PORTAL_STRIPE_TIMEOUT_MS", async () => {
    const c = await subscribedCustomer();
    await usageReported(c.customerId, c.stripeCustomerId, 2, 1_000);

    const before = emu.calls[PREVIEW] ?? 0;
    emu.failNext(2, 500, { path: "/v1/invoices/create_preview" });
    const failed = await portal(c.customerId);
    expect(failed.invoice_preview).toMatchObject({
      source: "meterline",
      total_micros: failed.charges.total_micros,
    });
    expect(failed.page).toContain('data-source="meterline"');
    // One call per load (JSON and page): the portal does not retry a failed preview.
    expect(emu.calls[PREVIEW]).toBe(before + 2);

    emu.setFaults({ slowMs: 4 * TIMEOUT_MS, paths: ["/v1/invoices/create_preview"] });
    try {
      const started = Date.now();
      const query = portalQuery(signPortalLink(portalSecret(stack.config)!, c.customerId));
      const res = await fetch(`${stack.url}/portal/data?${query}`);
      const elapsed = Date.now() - started;
      const data = (await res.json()) as { invoice_preview: Preview; charges: { total_micros: number } };
      expect(data.invoice_preview).toMatchObject({
        source: "meterline",
        total_micros: data.charges.total_micros,
      });
      expect(elapsed).toBeGreaterThanOrEqual(TIMEOUT_MS);
      expect(elapsed).toBeLessThan(4 * TIMEOUT_MS);
    } finally {
      emu.clearFaults();
    }
  }, 60_000);

  it("is meterline's rating, without asking Stripe, for a customer with no subscription", async () => {
    const stripeCustomerId = emu.createCustomer().id;
    const customer = await createCustomer(stack.db, { name: "Unsubscribed Co", stripeCustomerId });
    await addUsage(stack.db, customer.id, 2, 500);
    const before = emu.calls[PREVIEW] ?? 0;
    const data = await portal(customer.id);
    expect(data.invoice_preview).toMatchObject({
      source: "meterline",
      total_micros: data.charges.total_micros,
    });
    expect(data.charges.total_micros).toBeGreaterThan(0);
    expect(emu.calls[PREVIEW] ?? 0).toBe(before);
  });
});
