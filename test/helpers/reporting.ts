import { randomBytes } from "node:crypto";
import { createCustomer } from "../../src/billing/customers/customers.js";
import { recordUsage } from "../../src/billing/ledger/ledger.js";
import type { Db } from "../../src/platform/db.js";
import type { StripeEmulator } from "../../src/local/stripe-emulator.js";
import { beforeAll } from "vitest";
import { reportingEnv, useStack, waitFor, type Stack, type StackOptions } from "./stack.js";

export { reportingEnv };

/** A meterline customer linked to a new customer in the emulator (or to `stripeCustomerId`). */
export async function linkedCustomer(db: Db, emu: StripeEmulator, stripeCustomerId?: string) {
  const stripeId = stripeCustomerId ?? emu.createCustomer().id;
  const customer = await createCustomer(db, { name: "Metered Co", stripeCustomerId: stripeId });
  return { customerId: customer.id, stripeCustomerId: stripeId };
}

/** Writes `count` ledger rows of `tokens` billable tokens each, as the chat worker would (now, or `at`). */
export async function addUsage(
  db: Db,
  customerId: string,
  count: number,
  tokens = 100,
  at?: Date,
): Promise<void> {
  for (let i = 0; i < count; i++) {
    await recordUsage(db, {
      requestId: `chat_${randomBytes(12).toString("hex")}`,
      customerId,
      model: "gpt-4o-mini",
      promptTokens: tokens - 10,
      cachedTokens: 0,
      cacheWriteTokens: 0,
      completionTokens: 10,
      reasoningTokens: 0,
      billableTokens: tokens,
      providerCostMicros: 1,
      priceMicros: 1,
      source: "provider",
      planId: "usage",
      pricing: { includedTokens: 0, overagePer1kMicros: 2_000 },
      ...(at ? { createdAt: at } : {}),
    });
  }
}

export async function ledgerTotal(db: Db, customerId: string): Promise<number> {
  const row = await db("usage_events")
    .where({ customer_id: customerId })
    .sum({ total: "billable_tokens" })
    .first();
  return Number(row?.total ?? 0);
}

export async function reportsOf(db: Db, customerId: string) {
  return db("usage_reports").where({ customer_id: customerId }).orderBy("id");
}

/**
 * A reporting test file's setup: useStack with a Stripe emulator it reports to, the first scheduled
 * flush (it runs at boot) already passed, so the tests decide when to flush. `emu` is `stack.stripe`.
 */
export function useReportingStack(opts: Omit<StackOptions, "stripe"> = {}): {
  stack: Stack;
  emu: StripeEmulator;
} {
  const stack = useStack({ ...opts, stripe: "reporting" });
  beforeAll(async () => {
    await waitFor(async () => (await stack.web.queues.usageFlush.getCompletedCount()) >= 1, {
      what: "the first scheduled flush",
    });
  });
  const emu = new Proxy({} as StripeEmulator, {
    get: (_, property) => Reflect.get(stack.stripe, property),
  });
  return { stack, emu };
}
