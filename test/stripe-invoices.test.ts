import { describe, expect, it } from "vitest";
import { invoiceObject } from "../src/local/stripe-emulator.js";
import { suspendIfOverdue } from "../src/billing/webhooks/customer-status.js";
import { useStack, waitFor } from "./helpers/stack.js";
import { deliver, inParallel, waitForEvents } from "./helpers/stripe-webhooks.js";

// Each customer's status follows its own unpaid invoices, not the latest invoice event.
const stack = useStack({
  stripe: "webhooks",
  env: {
    PAYMENT_GRACE_PERIOD_MS: "4000",
    STRIPE_EVENT_BACKOFF_MS: "50",
    STRIPE_EVENT_CONCURRENCY: "20",
  },
});

let clock = Math.floor(Date.now() / 1000);
let invoiceSeq = 0;

async function billingCustomer() {
  const customer = await stack.customer();
  const stripeId = `cus_${customer.customerId.slice(5)}`;
  await stack.db("customers").where({ id: customer.customerId }).update({ stripe_customer_id: stripeId });
  const invoice = () => `in_${stripeId.slice(4)}_${++invoiceSeq}`;
  /** A signed invoice event, built but not sent; `created` defaults to the next second. */
  const build = (type: string, invoiceId: string, created = ++clock) =>
    stack.stripe.buildEvent(
      type,
      invoiceObject({
        id: invoiceId,
        customer: stripeId,
        subscription: "sub_invoices",
        status: "open",
        amount_due: 2_000,
      }),
      { created },
    );
  const send = async (...events: ReturnType<typeof build>[]) => {
    for (const e of events) {
      expect((await deliver(stack.url, e)).status).toBe(200);
      await waitForEvents(stack.db, [String(e.event.id)]);
    }
  };
  const status = async (): Promise<string> =>
    (await stack.db("customers").where({ id: customer.customerId }).first()).status;
  const invoiceRow = (id: string) => stack.db("invoices").where({ id }).first();
  return { ...customer, invoice, build, send, status, invoiceRow };
}

describe("suspensions follow unpaid invoices", () => {
  it("stays past_due while a second failed invoice is open, is suspended at the end of grace, and is active once both are paid", async () => {
    const c = await billingCustomer();
    const [a, b] = [c.invoice(), c.invoice()];
    await c.send(c.build("invoice.payment_failed", a), c.build("invoice.payment_failed", b));
    expect(await c.status()).toBe("past_due");

    await c.send(c.build("invoice.paid", a));
    expect(await c.status()).toBe("past_due");
    expect(await c.invoiceRow(a)).toMatchObject({ status: "paid", customer_id: c.customerId });
    expect(await c.invoiceRow(b)).toMatchObject({ status: "unpaid" });

    await waitFor(async () => (await c.status()) === "suspended", {
      what: "suspension for the invoice still unpaid",
    });

    await c.send(c.build("invoice.paid", b));
    expect(await stack.db("customers").where({ id: c.customerId }).first()).toMatchObject({
      status: "active",
      past_due_since: null,
    });
  });

  it("is order-safe per invoice: a payment delivered before its own failure, and another invoice's older failure, still count", async () => {
    const c = await billingCustomer();
    const [a, b] = [c.invoice(), c.invoice()];
    const t = clock;
    clock += 10;
    const failedA = c.build("invoice.payment_failed", a, t + 1);
    const failedB = c.build("invoice.payment_failed", b, t + 2);
    const paidA = c.build("invoice.paid", a, t + 3);
    const paidB = c.build("invoice.paid", b, t + 4);

    await c.send(paidA);
    expect(await c.status()).toBe("active");
    // Older than the payment of A, but about B: B is owed.
    await c.send(failedB);
    expect(await c.status()).toBe("past_due");
    // The late failure of A must not reopen A, which is paid.
    await c.send(failedA);
    expect(await c.invoiceRow(a)).toMatchObject({ status: "paid", last_event_created: t + 3 });
    expect(
      await stack
        .db("stripe_events")
        .where({ id: String(failedA.event.id) })
        .first(),
    ).toMatchObject({ status: "ignored" });

    await c.send(paidB);
    expect(await c.status()).toBe("active");

    // Paid before failed for the same invoice, nothing else open: active, and stays so.
    const d = c.invoice();
    const failedD = c.build("invoice.payment_failed", d, ++clock);
    await c.send(c.build("invoice.paid", d, ++clock), failedD);
    expect(await c.status()).toBe("active");
    expect(await c.invoiceRow(d)).toMatchObject({ status: "paid" });
  });

  it("a voided invoice counts as settled", async () => {
    const c = await billingCustomer();
    const [a, b] = [c.invoice(), c.invoice()];
    await c.send(
      c.build("invoice.payment_failed", a),
      c.build("invoice.payment_failed", b),
      c.build("invoice.paid", b),
    );
    expect(await c.status()).toBe("past_due");
    await c.send(c.build("invoice.voided", a));
    expect(await c.status()).toBe("active");
    expect(await c.invoiceRow(a)).toMatchObject({ status: "voided" });
  });

  it("an uncollectible invoice is still owed: no reactivation until it is paid", async () => {
    const c = await billingCustomer();
    const [a, b] = [c.invoice(), c.invoice()];
    await c.send(
      c.build("invoice.payment_failed", a),
      c.build("invoice.payment_failed", b),
      c.build("invoice.marked_uncollectible", a),
      c.build("invoice.paid", b),
    );
    expect(await c.status()).toBe("past_due");
    expect(await c.invoiceRow(a)).toMatchObject({ status: "uncollectible" });
    // Stripe lets an uncollectible invoice be paid later: that settles it.
    await c.send(c.build("invoice.paid", a));
    expect(await c.status()).toBe("active");
  });

  it("ten invoices paid at once reactivate the customer exactly when the last one lands", async () => {
    const c = await billingCustomer();
    const ids = Array.from({ length: 10 }, () => c.invoice());
    await inParallel(
      ids.map((id) => c.build("invoice.payment_failed", id)),
      10,
      (e) => c.send(e),
    );
    expect(await c.status()).toBe("past_due");
    const paid = ids.map((id) => c.build("invoice.paid", id));
    const answers = await inParallel(paid, 10, (e) => deliver(stack.url, e));
    expect(answers.every((a) => a.status === 200)).toBe(true);
    await waitForEvents(
      stack.db,
      paid.map((e) => String(e.event.id)),
    );
    expect(await stack.db("invoices").where({ customer_id: c.customerId, status: "paid" })).toHaveLength(10);
    expect(await c.status()).toBe("active");
  });

  it("the suspension check suspends a past_due customer only while an invoice is owed", async () => {
    const c = await billingCustomer();
    // past_due by hand, grace long over, but no invoice on record: nothing says it must pay.
    const since = new Date(Date.now() - 60_000);
    await stack
      .db("customers")
      .where({ id: c.customerId })
      .update({ status: "past_due", past_due_since: since });
    expect(await suspendIfOverdue(stack.db, c.customerId, since, 1_000)).toBe("nothing-owed");
    expect(await c.status()).toBe("past_due");

    await stack
      .db("invoices")
      .insert({ id: c.invoice(), customer_id: c.customerId, status: "uncollectible", last_event_created: 1 });
    expect(await suspendIfOverdue(stack.db, c.customerId, since, 1_000)).toBe("suspended");
    expect(await c.status()).toBe("suspended");
  });
});
