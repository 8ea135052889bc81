import { randomBytes } from "node:crypto";
import { createCustomer } from "../../src/billing/customers.js";
import { recordUsage } from "../../src/billing/ledger.js";
import type { Db } from "../../src/db.js";
import type { StripeEmulator } from "../../src/local/stripe-emulator.js";

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
