import { describe, expect, it } from "vitest";
import { invoiceObject } from "../src/local/stripe-emulator.js";
import { suspendJobId } from "../jobs/stripe-event.js";
import { createApiKey } from "../src/billing/customers/customers.js";
import { ask, useStack, waitFor } from "./helpers/stack.js";
import { waitForEvents } from "./helpers/stripe-webhooks.js";

const stack = useStack({
  stripe: "webhooks",
  env: { PAYMENT_GRACE_PERIOD_MS: "3000", STRIPE_EVENT_BACKOFF_MS: "50" },
});

let clock = Math.floor(Date.now() / 1000);
async function billingCustomer() {
  const customer = await stack.customer();
  const stripeId = `cus_${customer.customerId.slice(5)}`;
  await stack.db("customers").where({ id: customer.customerId }).update({ stripe_customer_id: stripeId });
  const chat = (key = customer.key) => stack.chat(key, ask("hello"));
  // One invoice per customer unless told otherwise: its failure and its payment are one debt.
  const send = async (type: string, invoiceId = `in_${stripeId.slice(4)}`) => {
    const invoice = invoiceObject({
      id: invoiceId,
      customer: stripeId,
      subscription: "sub_status",
      status: "open",
      amount_due: 2_000,
    });
    const { status, event } = await stack.stripe.sendWebhook(type, invoice, { created: ++clock });
    expect(status).toBe(200);
    await waitForEvents(stack.db, [String(event.id)]);
  };
  const row = () => stack.db("customers").where({ id: customer.customerId }).first();
  // The API caches key lookups for a moment: a status change reaches it within that time.
  const chatAnswers = (status: number) =>
    waitFor(async () => ((await chat()).status === status ? true : undefined), {
      what: `a chat answered ${status}`,
    });
  return { ...customer, chat, chatAnswers, send, row };
}

describe("payment failure, grace period and suspension", () => {
  it("past_due keeps serving, suspends after the grace period (402), and invoice.paid restores service", async () => {
    const c = await billingCustomer();
    expect((await c.chat()).status).toBe(200);

    await c.send("invoice.payment_failed");
    const pastDue = await c.row();
    expect(pastDue).toMatchObject({ status: "past_due" });
    expect(pastDue.past_due_since).toBeInstanceOf(Date);
    // A fresh key is looked up now (not from the API's key cache): past_due is still served.
    expect((await c.chat((await createApiKey(stack.db, c.customerId)).key)).status).toBe(200);

    await waitFor(async () => (await c.row()).status === "suspended", {
      what: "suspension after the grace period",
    });
    const refused = await c.chat();
    expect(refused.status).toBe(402);
    expect(refused.body.error?.code).toBe("account_suspended");

    await c.send("invoice.paid");
    expect(await c.row()).toMatchObject({ status: "active", past_due_since: null });
    await c.chatAnswers(200);
  });

  it("a payment that succeeds within the grace period wins over the delayed suspension", async () => {
    const c = await billingCustomer();
    await c.send("invoice.payment_failed");
    const since: Date = (await c.row()).past_due_since;
    await c.send("invoice.paid");
    expect((await c.row()).status).toBe("active");

    const job = await stack.web.queues.stripeEvent.getJob(suspendJobId(c.customerId, since));
    expect(job).toBeDefined();
    await waitFor(async () => (await job!.getState()) === "completed", {
      what: "the delayed suspension check",
    });
    expect((await stack.web.queues.stripeEvent.getJob(job!.id!))?.returnvalue).toMatchObject({
      result: "not-past-due",
    });
    expect((await c.row()).status).toBe("active");
  });

  it("an old payment failure delivered after a newer payment does not reopen the debt", async () => {
    const c = await billingCustomer();
    const invoice = invoiceObject({
      customer: (await c.row()).stripe_customer_id,
      subscription: "sub_x",
      status: "open",
      amount_due: 1,
    });
    const failed = stack.stripe.buildEvent("invoice.payment_failed", invoice, { created: ++clock });
    const paid = stack.stripe.buildEvent("invoice.paid", invoice, { created: ++clock });
    for (const e of [paid, failed]) {
      await fetch(`${stack.url}/webhooks/stripe`, {
        method: "POST",
        headers: { "content-type": "application/json", "stripe-signature": e.header },
        body: e.payload,
      });
      await waitForEvents(stack.db, [String(e.event.id)]);
    }
    expect(await c.row()).toMatchObject({ status: "active" });
    expect(await stack.db("invoices").where({ id: invoice.id }).first()).toMatchObject({
      status: "paid",
      last_event_created: paid.event.created,
    });
  });

  it("customer.deleted cancels the customer (403)", async () => {
    const c = await billingCustomer();
    const stripeId = (await c.row()).stripe_customer_id;
    const { event } = await stack.stripe.sendWebhook(
      "customer.deleted",
      { id: stripeId, object: "customer", deleted: true },
      { created: ++clock },
    );
    await waitForEvents(stack.db, [String(event.id)]);
    expect((await c.row()).status).toBe("canceled");
    await c.chatAnswers(403);
  });
});
