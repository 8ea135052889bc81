import { randomBytes } from "node:crypto";
import { createCustomer } from "../../src/billing/customers/customers.js";
import { recordUsage } from "../../src/billing/ledger/ledger.js";
import type { Db } from "../../src/platform/db.js";
import { startStripeEmulator, type StripeEmulator } from "../../src/local/stripe-emulator.js";
import { afterAll, beforeAll } from "vitest";
import { createTestDatabase } from "./db.js";
import { startStack, waitFor, type Stack } from "./stack.js";

/** Env that points a stack at a Stripe emulator, with small backoffs so retries stay fast. */
export const reportingEnv = (emu: StripeEmulator, extra: Record<string, string> = {}) => ({
  STRIPE_SECRET_KEY: "sk_test_meterline",
  STRIPE_API_BASE: emu.url,
  STRIPE_TIMEOUT_MS: "5000",
  USAGE_FLUSH_INTERVAL_MS: "3600000",
  USAGE_SWEEP_INTERVAL_MS: "3600000",
  STRIPE_REPORT_BACKOFF_MS: "10",
  STRIPE_REPORT_BACKOFF_MAX_MS: "100",
  STRIPE_RATE_LIMIT_MS: "20",
  ...extra,
});

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
      completionTokens: 10,
      reasoningTokens: 0,
      billableTokens: tokens,
      providerCostMicros: 1,
      priceMicros: 1,
      source: "provider",
      planId: "usage",
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
 * A reporting test file's setup: a fresh database, a Stripe emulator and a stack reporting to it,
 * started before the file's tests and closed after them. The scheduler's first flush runs at boot;
 * it has passed before the tests start, so they decide when to flush. The returned objects forward
 * to the ones `beforeAll` starts.
 */
export function useReportingStack(): { stack: Stack; emu: StripeEmulator } {
  let database: Awaited<ReturnType<typeof createTestDatabase>> | undefined;
  let emu: StripeEmulator | undefined;
  let stack: Stack | undefined;
  beforeAll(async () => {
    database = await createTestDatabase();
    emu = await startStripeEmulator();
    stack = await startStack({ databaseUrl: database.url, env: reportingEnv(emu) });
    await waitFor(async () => (await stack!.web.queues.usageFlush.getCompletedCount()) >= 1, {
      what: "the first scheduled flush",
    });
  });
  afterAll(async () => {
    await stack?.close();
    await emu?.close();
    await database?.drop();
  });
  // Unbound on purpose, as useStack: `stack.db` is a function with properties.
  const forward = <T extends object>(current: () => T | undefined): T =>
    new Proxy({} as T, {
      get(_, property) {
        const target = current();
        if (!target) throw new Error("the reporting stack is used before beforeAll started it");
        return Reflect.get(target, property);
      },
    });
  return { stack: forward(() => stack), emu: forward(() => emu) };
}
