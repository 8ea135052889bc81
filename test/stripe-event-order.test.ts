import { beforeAll, describe, expect, it } from "vitest";
import { subscriptionObject } from "../src/local/stripe-emulator.js";
import { createCustomer } from "../src/billing/customers/customers.js";
import { useStack } from "./helpers/stack.js";
import { deliver, inParallel, waitForEvents } from "./helpers/stripe-webhooks.js";

const stack = useStack({ stripe: "webhooks", env: { STRIPE_EVENT_CONCURRENCY: "20" } });

const PRICES: Record<string, string> = {
  pro: "price_pro_base",
  team: "price_team_base",
  usage: "price_usage_metered",
};

beforeAll(async () => {
  for (const [plan, price] of Object.entries(PRICES)) {
    await stack
      .db("plans")
      .where({ id: plan })
      .update({ stripe_price_ids: JSON.stringify({ base: price }) });
  }
});

const T0 = 1_800_000_000;
const sub = (id: string, customer: string, status: string, price: string, period = 0) =>
  subscriptionObject({
    id,
    customer,
    status,
    priceId: price,
    periodStart: T0 + period * 2_592_000,
    periodEnd: T0 + (period + 1) * 2_592_000,
  });
const subscriptionRow = (id: string) => stack.db("subscriptions").where({ id }).first();

describe("out-of-order delivery", () => {
  it("applies .updated that arrives before .created, and keeps the newest when an older .updated comes late", async () => {
    const customer = await createCustomer(stack.db, { name: "Order Co", stripeCustomerId: "cus_order" });
    const created = stack.stripe.buildEvent(
      "customer.subscription.created",
      sub("sub_order", "cus_order", "incomplete", PRICES.usage!),
      {
        created: T0 + 10,
      },
    );
    const updated = stack.stripe.buildEvent(
      "customer.subscription.updated",
      sub("sub_order", "cus_order", "active", PRICES.team!),
      {
        created: T0 + 20,
      },
    );
    for (const e of [updated, created]) {
      expect((await deliver(stack.url, e)).status).toBe(200);
      await waitForEvents(stack.db, [String(e.event.id)]);
    }
    expect(await subscriptionRow("sub_order")).toMatchObject({
      status: "active",
      plan_id: "team",
      customer_id: customer.id,
      last_event_created: T0 + 20,
    });

    const newer = stack.stripe.buildEvent(
      "customer.subscription.updated",
      sub("sub_order", "cus_order", "past_due", PRICES.pro!, 1),
      {
        created: T0 + 40,
      },
    );
    const older = stack.stripe.buildEvent(
      "customer.subscription.updated",
      sub("sub_order", "cus_order", "active", PRICES.team!),
      {
        created: T0 + 30,
      },
    );
    for (const e of [newer, older]) {
      await deliver(stack.url, e);
      await waitForEvents(stack.db, [String(e.event.id)]);
    }
    const row = await subscriptionRow("sub_order");
    expect(row).toMatchObject({
      status: "past_due",
      plan_id: "pro",
      stripe_price_id: PRICES.pro,
      last_event_created: T0 + 40,
    });
    expect(row.current_period_start.getTime()).toBe((T0 + 2_592_000) * 1000);
    expect(
      await stack
        .db("stripe_events")
        .where({ id: String(older.event.id) })
        .first(),
    ).toMatchObject({ status: "ignored" });
    // The customer follows the subscription's newest state, not the late event.
    expect(await stack.db("customers").where({ id: customer.id }).first()).toMatchObject({ plan_id: "pro" });
  });
});

/** A seeded PRNG, so a failure can be replayed. */
function prng(seed: number) {
  return () => {
    seed = (seed * 1_103_515_245 + 12_345) % 2_147_483_648;
    return seed / 2_147_483_648;
  };
}

describe("1,000 events for 50 subscriptions", () => {
  it("ends in the same state shuffled with 30% duplicates as delivered in order", async () => {
    const random = prng(20261127);
    const pick = <T>(xs: T[]) => xs[Math.floor(random() * xs.length)]!;
    const SUBS = 50;
    const PER_SUB = 20;
    // One history per subscription, played twice: in order (ids "ord") and shuffled with duplicates ("shuf").
    const histories = Array.from({ length: SUBS }, (_, s) =>
      Array.from({ length: PER_SUB }, (_, i) => {
        const last = i === PER_SUB - 1;
        const type = i === 0 ? "created" : last && s % 3 === 0 ? "deleted" : "updated";
        const status =
          type === "deleted" ? "canceled" : pick(["active", "active", "trialing", "past_due", "unpaid"]);
        return {
          s,
          i,
          type,
          status,
          price: pick(Object.values(PRICES)),
          created: T0 + i * 60 + Math.floor(random() * 50),
        };
      }),
    );
    const build = (variant: string) =>
      histories
        .flat()
        .map((h) =>
          stack.stripe.buildEvent(
            `customer.subscription.${h.type}`,
            sub(`sub_${variant}_${h.s}`, `cus_${variant}_${h.s}`, h.status, h.price, h.i),
            { created: h.created, store: false },
          ),
        );
    for (const variant of ["ord", "shuf"]) {
      await stack.db("customers").insert(
        Array.from({ length: SUBS }, (_, s) => ({
          id: `cust_${variant}_${s}`,
          name: `${variant} ${s}`,
          plan_id: "usage",
          stripe_customer_id: `cus_${variant}_${s}`,
        })),
      );
    }

    // In order: each subscription's events one at a time, each applied before the next is sent
    // (subscriptions are independent, so their lanes run side by side).
    const ordered = build("ord");
    await inParallel(
      Array.from({ length: SUBS }, (_, s) => ordered.slice(s * PER_SUB, (s + 1) * PER_SUB)),
      SUBS,
      async (lane) => {
        for (const e of lane) {
          await deliver(stack.url, e);
          await waitForEvents(stack.db, [String(e.event.id)], { intervalMs: 10 });
        }
      },
    );

    const unique = build("shuf");
    const duplicates = Array.from({ length: Math.round(unique.length * 0.3) }, () => pick(unique));
    const deliveries = [...unique, ...duplicates];
    for (let i = deliveries.length - 1; i > 0; i--) {
      const j = Math.floor(random() * (i + 1));
      [deliveries[i], deliveries[j]] = [deliveries[j]!, deliveries[i]!];
    }
    const started = Date.now();
    const answers = await inParallel(deliveries, 16, (e) => deliver(stack.url, e));
    const intakeMs = Date.now() - started;
    await waitForEvents(
      stack.db,
      unique.map((e) => String(e.event.id)),
      { timeoutMs: 60_000, intervalMs: 20 },
    );
    const totalMs = Date.now() - started;

    expect(answers.every((a) => a.status === 200)).toBe(true);
    expect(answers.filter((a) => a.body.duplicate === true)).toHaveLength(duplicates.length);
    const events = await stack.db("stripe_events").whereIn(
      "id",
      unique.map((e) => String(e.event.id)),
    );
    expect(events).toHaveLength(1_000);
    expect(events.every((e) => e.attempts === 1 && ["processed", "ignored"].includes(e.status))).toBe(true);

    const state = async (variant: string) => {
      const ids = Array.from({ length: SUBS }, (_, s) => s);
      const subs = await stack
        .db("subscriptions")
        .whereIn(
          "id",
          ids.map((s) => `sub_${variant}_${s}`),
        )
        .orderBy("id");
      const customers = await stack
        .db("customers")
        .whereIn(
          "id",
          ids.map((s) => `cust_${variant}_${s}`),
        )
        .orderBy("id");
      const strip = (x: string) => x.replace(`_${variant}_`, "_");
      return {
        subs: subs.map((r) => ({
          id: strip(r.id),
          customer: strip(r.customer_id),
          status: r.status,
          price: r.stripe_price_id,
          plan: r.plan_id,
          period: [r.current_period_start.getTime(), r.current_period_end.getTime()],
          watermark: r.last_event_created,
        })),
        customers: customers.map((r) => ({ id: strip(r.id), status: r.status, plan: r.plan_id })),
      };
    };
    const inOrder = await state("ord");
    expect(inOrder.subs).toHaveLength(SUBS);
    // In order means each subscription ends as its newest event says.
    for (const history of histories) {
      const newest = history[PER_SUB - 1]!;
      expect(inOrder.subs.find((r) => r.id === `sub_${newest.s}`)).toMatchObject({
        status: newest.status,
        price: newest.price,
        watermark: newest.created,
      });
    }
    expect(new Set(inOrder.customers.map((c) => c.status))).toEqual(new Set(["active", "canceled"]));
    expect(await state("shuf")).toEqual(inOrder);

    console.info(
      `1,000-event test: ${unique.length} events + ${duplicates.length} duplicates = ${deliveries.length} deliveries, ` +
        `${SUBS} subscriptions; intake ${intakeMs} ms (${Math.round((deliveries.length * 1000) / intakeMs)} req/s at 16 in flight), ` +
        `all applied after ${totalMs} ms`,
    );
  }, 180_000);
});
