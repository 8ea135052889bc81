import { beforeAll, describe, expect, it } from "vitest";
import { subscriptionObject } from "../src/local/stripe-emulator.js";
import { createCustomer } from "../src/billing/customers/customers.js";
import { useStack } from "./helpers/stack.js";
import { deliver, waitForEvents } from "./helpers/stripe-webhooks.js";

// "reporting": the Stripe client points at the emulator, which the refetch reads.
const stack = useStack({ stripe: "reporting", env: { STRIPE_WEBHOOK_REFETCH: "true" } });

beforeAll(async () => {
  await stack
    .db("plans")
    .where({ id: "team" })
    .update({ stripe_price_ids: JSON.stringify(["price_team"]) });
});

describe("STRIPE_WEBHOOK_REFETCH=true", () => {
  it("applies the subscription as Stripe holds it now, not the event's snapshot", async () => {
    const emu = stack.stripe;
    const customer = await createCustomer(stack.db, { name: "Refetch Co", stripeCustomerId: "cus_refetch" });
    const shape = {
      id: "sub_refetch",
      customer: "cus_refetch",
      periodStart: 1_800_000_000,
      periodEnd: 1_802_592_000,
    };
    emu.putObject(subscriptionObject({ ...shape, status: "active", priceId: "price_team" }));
    const stale = emu.buildEvent(
      "customer.subscription.updated",
      subscriptionObject({ ...shape, status: "incomplete", priceId: "price_other" }),
      { created: 1_800_000_100, store: false },
    );
    expect((await deliver(stack.url, stale)).status).toBe(200);
    await waitForEvents(stack.db, [String(stale.event.id)]);
    expect(await stack.db("subscriptions").where({ id: "sub_refetch" }).first()).toMatchObject({
      status: "active",
      stripe_price_id: "price_team",
      plan_id: "team",
      customer_id: customer.id,
    });
    expect(emu.calls["GET /v1/subscriptions/:id"]).toBe(1);
  });
});
