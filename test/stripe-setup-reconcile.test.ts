import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { flushUsage } from "../src/billing/reporting/usage-flush.js";
import { reconcileDay } from "../src/billing/reporting/reconcile.js";
import { setupStripe } from "../src/billing/reporting/stripe-setup.js";
import { useStack, waitFor } from "./helpers/stack.js";
import { addUsage, linkedCustomer, reportingEnv, reportsOf } from "./helpers/reporting.js";

const run = promisify(execFile);
const stack = useStack({ stripe: "reporting" });

const deps = () => ({ ...stack.web, stripe: stack.web.stripe! });

describe("stripe:setup", () => {
  it("creates the meter, products and prices once, finds them again, and stores the price ids on the plans", async () => {
    const first = await setupStripe(deps());
    const second = await setupStripe(deps());
    expect(first.meter.created).toBe(true);
    expect(second.meter).toEqual({ ...first.meter, created: false });
    expect(second.plans).toEqual(
      first.plans.map((p) => ({
        ...p,
        prices: Object.fromEntries(Object.entries(p.prices).map(([k, v]) => [k, { ...v, created: false }])),
      })),
    );
    const pro = first.plans.find((p) => p.planId === "pro")!;
    expect(Object.keys(pro.prices).sort()).toEqual(["base", "usage"]);
    const price = await stack.web.stripe!.prices.retrieve(pro.prices.usage!.id, { expand: ["tiers"] });
    expect(price.tiers?.[0]).toMatchObject({ up_to: 2_000_000, unit_amount: 0 });
    expect(price.recurring).toMatchObject({ usage_type: "metered", meter: first.meter.id });
    const row = await stack.db("plans").where({ id: "pro" }).first();
    expect(row.stripe_price_ids).toEqual({ usage: pro.prices.usage!.id, base: pro.prices.base!.id });

    // A changed plan gets a new price that takes over the lookup key.
    await stack.db("plans").where({ id: "pro" }).update({ overage_per_1k_micros: 1_200 });
    const third = await setupStripe(deps());
    const changed = third.plans.find((p) => p.planId === "pro")!;
    expect(changed.prices.usage!.created).toBe(true);
    expect(changed.prices.usage!.id).not.toBe(pro.prices.usage!.id);
    expect(changed.prices.base).toEqual({ ...pro.prices.base, created: false });
  });
});

describe("reconciliation", () => {
  it("finds no drift after a clean run and the exact difference after Stripe lost an event", async () => {
    const emu = stack.stripe;
    const customers = await Promise.all([1, 2].map(() => linkedCustomer(stack.db, emu)));
    for (const c of customers) await addUsage(stack.db, c.customerId, 3, 100);
    await flushUsage(stack.web);
    for (const c of customers) {
      await waitFor(async () => (await reportsOf(stack.db, c.customerId)).every((r) => r.status === "sent"));
    }
    const today = new Date().toISOString().slice(0, 10);
    const clean = await reconcileDay(deps(), today);
    for (const c of customers) {
      expect(clean.find((r) => r.customerId === c.customerId)).toMatchObject({
        sentValue: 300,
        stripeValue: 300,
        drift: 0,
      });
    }

    const [lost] = await reportsOf(stack.db, customers[0]!.customerId);
    emu.removeMeterEvent(lost.identifier);
    const env = {
      ...process.env,
      DATABASE_URL: stack.config.databaseUrl,
      QUEUE_PREFIX: stack.config.queuePrefix,
      ...reportingEnv(emu),
      LOG_LEVEL: "silent",
    };
    const cli = await run("npx", ["tsx", "src/cli.ts", "reconcile", "--date", today, "--json"], {
      env,
    }).catch((err: { code: number; stdout: string }) => err);
    expect("code" in cli ? cli.code : 0).toBe(3); // drift makes the command fail, for cron and CI
    const printed = JSON.parse(cli.stdout);
    expect(
      printed.find((r: { customerId: string }) => r.customerId === customers[0]!.customerId),
    ).toMatchObject({
      sentValue: 300,
      stripeValue: 300 - Number(lost.value),
      drift: -Number(lost.value),
    });
    expect(printed.find((r: { customerId: string }) => r.customerId === customers[1]!.customerId).drift).toBe(
      0,
    );
    const recorded = await stack
      .db("usage_reconciliations")
      .where({ customer_id: customers[0]!.customerId, day: today })
      .first();
    expect(Number(recorded.drift)).toBe(-Number(lost.value));
  });
});
