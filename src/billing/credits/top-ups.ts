import { randomBytes } from "node:crypto";
import Stripe from "stripe";
import { z } from "zod";
import { NotFoundError, PermanentError } from "../../errors.js";
import type { Db } from "../../platform/db.js";
import type { Logger } from "../../platform/logger.js";
import type { Queues } from "../../queues/queues.js";
import { publishEvent } from "../../notifications/publish.js";
import { lockCreditAccount } from "./account.js";
import { creditBalance } from "./balance.js";
import { MICROS_PER_CENT, stripeCustomerIdOf, type TopUpOutcome } from "./checkout.js";
import type { CreditCounter } from "./counter.js";
import { grantCredits } from "./grants.js";

// Automatic top-ups: when a customer's balance falls below its threshold, one off-session
// PaymentIntent for the configured amount, granted on payment_intent.succeeded (reference = the
// PaymentIntent id) and alerted on payment_intent.payment_failed. One `credit_top_ups` row per
// attempt: at most one pending per customer, at most `max_per_month` attempts per UTC month.

/** The outgoing webhook event a failed automatic top-up publishes (once per top-up). */
export const AUTO_TOP_UP_FAILED = "credits.auto_top_up_failed";

/** The PaymentIntent metadata key naming the top-up it pays; Checkout's PaymentIntents carry none. */
export const TOP_UP_METADATA = "meterline_top_up_id";

/**
 * How long one caller has to create a top-up's PaymentIntent before another may: longer than a
 * Stripe call with its timeout and retry. Two callers overlapping anyway still make one
 * PaymentIntent (the idempotency key is the top-up id).
 */
const CHARGE_LEASE_S = 60;

/**
 * How long a charged top-up waits for its payment_intent webhook before the sweep asks Stripe for
 * the PaymentIntent instead (a webhook endpoint misconfigured or down for longer than Stripe retries).
 */
const WEBHOOK_WAIT_S = 600;

export interface AutoTopUpSettings {
  enabled: boolean;
  thresholdMicros: number;
  amountMicros: number;
  maxPerMonth: number;
  /** When they were last saved: a top-up that failed after this pauses automatic top-ups. */
  updatedAt: Date;
}

export type TopUpStatus = "pending" | "succeeded" | "failed";

export interface TopUp {
  id: string;
  customerId: string;
  status: TopUpStatus;
  month: string;
  amountMicros: number;
  paymentIntentId: string | null;
  failure: string | null;
  createdAt: Date;
}

type TopUpRow = {
  id: string;
  customer_id: string;
  status: TopUpStatus;
  month: string;
  amount_micros: number;
  payment_intent_id: string | null;
  failure: string | null;
  created_at: Date;
};

const topUpFromRow = (r: TopUpRow): TopUp => ({
  id: r.id,
  customerId: r.customer_id,
  status: r.status,
  month: r.month,
  amountMicros: r.amount_micros,
  paymentIntentId: r.payment_intent_id,
  failure: r.failure,
  createdAt: r.created_at,
});

/** "2026-12": the UTC calendar month a top-up counts against. */
export const monthOf = (date: Date): string => date.toISOString().slice(0, 7);

/**
 * Sets a customer's automatic top-up (validated by the caller: whole cents, positive bounds), or
 * turns it off keeping the last amounts. Throws NotFoundError for an unknown customer, and when
 * turning off a customer that never had settings.
 */
export async function setAutoTopUp(
  db: Db,
  customerId: string,
  settings: Omit<AutoTopUpSettings, "enabled" | "updatedAt"> | { enabled: false },
): Promise<AutoTopUpSettings> {
  if (!(await db("customers").where({ id: customerId }).first("id")))
    throw new NotFoundError(`no customer "${customerId}"`);
  if ("enabled" in settings) {
    const [row] = await db("credit_auto_top_up_settings")
      .where({ customer_id: customerId })
      .update({ enabled: false, updated_at: db.fn.now() })
      .returning("*");
    if (!row) throw new NotFoundError(`customer "${customerId}" has no automatic top-up`);
    return settingsFromRow(row);
  }
  const values = {
    customer_id: customerId,
    enabled: true,
    threshold_micros: settings.thresholdMicros,
    amount_micros: settings.amountMicros,
    max_per_month: settings.maxPerMonth,
    updated_at: db.fn.now(),
  };
  const [row] = await db("credit_auto_top_up_settings")
    .insert(values)
    .onConflict("customer_id")
    .merge()
    .returning("*");
  return settingsFromRow(row);
}

/** The customer's automatic top-up settings, or undefined when it never had any. */
export async function autoTopUpOf(db: Db, customerId: string): Promise<AutoTopUpSettings | undefined> {
  const row = await db("credit_auto_top_up_settings").where({ customer_id: customerId }).first();
  return row ? settingsFromRow(row) : undefined;
}

function settingsFromRow(r: Record<string, unknown>): AutoTopUpSettings {
  return {
    enabled: Boolean(r.enabled),
    thresholdMicros: Number(r.threshold_micros),
    amountMicros: Number(r.amount_micros),
    maxPerMonth: Number(r.max_per_month),
    updatedAt: r.updated_at as Date,
  };
}

/** The customer's top-ups, newest first. */
export async function listTopUps(db: Db, customerId: string, limit = 20): Promise<TopUp[]> {
  const rows: TopUpRow[] = await db("credit_top_ups")
    .where({ customer_id: customerId })
    .orderBy([
      { column: "created_at", order: "desc" },
      { column: "id", order: "desc" },
    ])
    .limit(limit);
  return rows.map(topUpFromRow);
}

export type AutoTopUpDeps = {
  db: Db;
  logger: Logger;
  queues: Pick<Queues, "webhookDelivery">;
  creditCounter: Pick<CreditCounter, "available" | "adjust">;
  stripe: Pick<Stripe, "paymentIntents" | "customers"> | undefined;
};

/**
 * The afterUsage step: starts an automatic top-up when the customer's balance is below its
 * threshold, or finishes starting one a crashed caller left without its PaymentIntent. Cheap when
 * nothing is due: one settings read and the Redis counter (what is available never exceeds the
 * balance, so a counter at or above the threshold means no top-up). Idempotent: the pending row is
 * the "one at a time", its id the PaymentIntent's idempotency key.
 *
 * A Stripe outage is logged, not thrown: the usage that called this is written and must not fail
 * for a top-up; the pending row is charged by the next afterUsage of this customer.
 */
export async function maybeAutoTopUp(deps: AutoTopUpDeps, customerId: string): Promise<void> {
  if (!deps.stripe) return;
  const settings = await autoTopUpOf(deps.db, customerId);
  if (!settings?.enabled) return;
  let topUp = await pendingTopUp(deps.db, customerId);
  if (!topUp) {
    if ((await deps.creditCounter.available(customerId)) >= settings.thresholdMicros) return;
    topUp = await openTopUp(deps.db, customerId, settings);
  }
  if (!topUp || topUp.paymentIntentId) return;
  await chargeTopUp({ ...deps, stripe: deps.stripe }, topUp);
}

/**
 * The periodic catch-up (the maintenance queue's "expire-credits" job, after the expiry): settles
 * top-ups whose webhook is overdue from the PaymentIntent itself, then runs maybeAutoTopUp for every
 * customer with automatic top-up on, for what no usage would start — credits that expired, or a
 * Stripe outage during the last usage of a customer who now has nothing left to spend. One
 * customer's failure is logged and the sweep goes on.
 */
export async function sweepAutoTopUps(
  deps: AutoTopUpDeps,
): Promise<{ customers: number; failed: number; settled: number }> {
  if (!deps.stripe) return { customers: 0, failed: 0, settled: 0 };
  const settled = await settleOverdueTopUps({ ...deps, stripe: deps.stripe });
  const customers: string[] = await deps
    .db("credit_auto_top_up_settings")
    .where({ enabled: true })
    .orderBy("customer_id")
    .pluck("customer_id");
  let failed = 0;
  for (const customerId of customers) {
    try {
      await maybeAutoTopUp(deps, customerId);
    } catch (err) {
      failed += 1;
      deps.logger.warn(
        { customerId, err: (err as Error).message },
        "automatic top-up sweep failed for a customer",
      );
    }
  }
  return { customers: customers.length, failed, settled };
}

/**
 * Pending top-ups charged more than WEBHOOK_WAIT_S ago whose webhook never came: applies their
 * PaymentIntent as Stripe answers it now, exactly as its event would be (succeeded → granted once,
 * declined or canceled → failed and alerted once); one still processing waits. Returns how many
 * were settled.
 */
async function settleOverdueTopUps(
  deps: AutoTopUpDeps & { stripe: NonNullable<AutoTopUpDeps["stripe"]> },
): Promise<number> {
  const overdue: string[] = await deps
    .db("credit_top_ups")
    .where({ status: "pending" })
    .whereNotNull("payment_intent_id")
    .where("updated_at", "<", deps.db.raw(`now() - interval '${WEBHOOK_WAIT_S} seconds'`))
    .pluck("payment_intent_id");
  let settled = 0;
  for (const id of overdue) {
    try {
      const intent = await deps.stripe.paymentIntents.retrieve(id);
      if (intent.status === "succeeded") await grantAutoTopUp(deps, intent);
      else if (intent.status === "requires_payment_method" || intent.status === "canceled")
        await failAutoTopUp(deps, intent);
      else continue;
      settled += 1;
    } catch (err) {
      deps.logger.warn({ paymentIntentId: id, err: (err as Error).message }, "overdue top-up not settled");
    }
  }
  return settled;
}

async function pendingTopUp(db: Db, customerId: string): Promise<TopUp | undefined> {
  const row: TopUpRow | undefined = await db("credit_top_ups")
    .where({ customer_id: customerId, status: "pending" })
    .first();
  return row && topUpFromRow(row);
}

/**
 * Under the customer's credit account lock (so concurrent callers decide one after the other, on
 * the committed balance): the pending top-up if there is one; else a new one when the balance is
 * below the threshold, fewer than `maxPerMonth` were attempted this month, and the last attempt did
 * not fail since the settings were saved (a declined card is not charged again and again: saving
 * the settings again, once the card is fixed, resumes); else nothing.
 */
async function openTopUp(
  db: Db,
  customerId: string,
  settings: AutoTopUpSettings,
): Promise<TopUp | undefined> {
  return db.transaction(async (trx) => {
    await lockCreditAccount(trx, customerId);
    const pending: TopUpRow | undefined = await trx("credit_top_ups")
      .where({ customer_id: customerId, status: "pending" })
      .first();
    if (pending) return topUpFromRow(pending);
    if ((await creditBalance(trx, customerId)) >= settings.thresholdMicros) return undefined;
    const last: TopUpRow | undefined = await trx("credit_top_ups")
      .where({ customer_id: customerId })
      .orderBy("created_at", "desc")
      .first();
    if (last?.status === "failed" && last.created_at >= settings.updatedAt) return undefined;
    const month = monthOf(new Date());
    const [attempts] = await trx("credit_top_ups")
      .where({ customer_id: customerId, month })
      .count<Array<{ n: string }>>({ n: "*" });
    if (Number(attempts?.n) >= settings.maxPerMonth) return undefined;
    const [row]: TopUpRow[] = await trx("credit_top_ups")
      .insert({
        id: `ctu_${randomBytes(12).toString("hex")}`,
        customer_id: customerId,
        month,
        amount_micros: settings.amountMicros,
      })
      .returning("*");
    return topUpFromRow(row!);
  });
}

/**
 * Creates the top-up's off-session PaymentIntent (confirmed at once, the customer's newest saved
 * card, idempotency key = top-up id) if no other caller holds the lease, and records its id. A
 * decline, or a customer Stripe cannot charge (no Stripe customer, no saved card, a refused
 * request), fails the top-up and alerts; any other error gives the lease back and is logged.
 */
async function chargeTopUp(
  deps: AutoTopUpDeps & { stripe: NonNullable<AutoTopUpDeps["stripe"]> },
  topUp: TopUp,
) {
  const claimed = await deps
    .db("credit_top_ups")
    .where({ id: topUp.id, status: "pending" })
    .whereNull("payment_intent_id")
    .where((q) => q.whereNull("charge_lease_until").orWhere("charge_lease_until", "<", deps.db.fn.now()))
    .update({ charge_lease_until: deps.db.raw(`now() + interval '${CHARGE_LEASE_S} seconds'`) })
    .returning("id");
  if (claimed.length === 0) return;
  const log = deps.logger.child({ customerId: topUp.customerId, topUpId: topUp.id });
  try {
    const stripeCustomer = await stripeCustomerIdOf(deps.db, topUp.customerId);
    if (!stripeCustomer) return await failTopUp(deps, topUp.id, { reason: "customer_not_linked_to_stripe" });
    const cards = await deps.stripe.customers.listPaymentMethods(stripeCustomer, { type: "card", limit: 1 });
    const card = cards.data[0];
    if (!card) return await failTopUp(deps, topUp.id, { reason: "no_saved_card" });
    const intent = await deps.stripe.paymentIntents.create(
      {
        amount: topUp.amountMicros / MICROS_PER_CENT,
        currency: "usd",
        customer: stripeCustomer,
        payment_method: card.id,
        off_session: true,
        confirm: true,
        description: "meterline automatic credit top-up",
        metadata: { [TOP_UP_METADATA]: topUp.id, meterline_customer_id: topUp.customerId },
      },
      { idempotencyKey: topUp.id },
    );
    await deps
      .db("credit_top_ups")
      .where({ id: topUp.id })
      .update({ payment_intent_id: intent.id, charge_lease_until: null, updated_at: deps.db.fn.now() });
    log.info({ paymentIntentId: intent.id, status: intent.status }, "automatic top-up charged");
  } catch (err) {
    if (err instanceof Stripe.errors.StripeCardError) {
      const reason = err.decline_code ?? err.code ?? "card_error";
      return await failTopUp(deps, topUp.id, { reason, paymentIntentId: err.payment_intent?.id });
    }
    if (err instanceof Stripe.errors.StripeInvalidRequestError)
      return await failTopUp(deps, topUp.id, { reason: err.code ?? "invalid_request" });
    await deps.db("credit_top_ups").where({ id: topUp.id }).update({ charge_lease_until: null });
    log.warn({ err: (err as Error).message }, "automatic top-up not charged yet; the next usage retries it");
  }
}

/**
 * Marks a pending top-up failed (a succeeded one stays succeeded) and publishes
 * `credits.auto_top_up_failed` with an event id derived from the top-up: the synchronous decline
 * and the later payment_intent.payment_failed publish it once between them.
 */
async function failTopUp(
  deps: Pick<AutoTopUpDeps, "db" | "logger" | "queues">,
  topUpId: string,
  failure: { reason: string; paymentIntentId?: string },
): Promise<void> {
  await deps
    .db("credit_top_ups")
    .where({ id: topUpId, status: "pending" })
    .update({
      status: "failed",
      failure: failure.reason,
      payment_intent_id: deps.db.raw("coalesce(payment_intent_id, ?)", [failure.paymentIntentId ?? null]),
      charge_lease_until: null,
      updated_at: deps.db.fn.now(),
    });
  const row: TopUpRow = await deps.db("credit_top_ups").where({ id: topUpId }).first();
  if (row.status !== "failed") return;
  await publishEvent(deps, {
    id: `evt_${topUpId}_failed`,
    type: AUTO_TOP_UP_FAILED,
    data: {
      customer_id: row.customer_id,
      top_up_id: row.id,
      amount_micros: row.amount_micros,
      payment_intent_id: row.payment_intent_id,
      reason: row.failure,
      balance_micros: await creditBalance(deps.db, row.customer_id),
    },
  });
  deps.logger.warn({ customerId: row.customer_id, topUpId, reason: row.failure }, "automatic top-up failed");
}

const intentSchema = z.looseObject({
  id: z.string(),
  amount: z.number().int(),
  amount_received: z.number().int().optional(),
  currency: z.string(),
  metadata: z.record(z.string(), z.string()).nullable(),
  last_payment_error: z
    .looseObject({ code: z.string().optional(), decline_code: z.string().optional() })
    .nullish(),
});

/** The top-up a PaymentIntent pays, or an outcome saying why the event grants nothing. */
async function topUpOfIntent(db: Db, object: unknown) {
  const parsed = intentSchema.safeParse(object);
  if (!parsed.success) throw new PermanentError(`malformed payment_intent: ${parsed.error.message}`, 400);
  const intent = parsed.data;
  const topUpId = intent.metadata?.[TOP_UP_METADATA];
  // A Checkout Session's PaymentIntent: granted on checkout.session.completed, never here.
  if (!topUpId) return { ignored: { status: "ignored", note: "not an automatic top-up" } as TopUpOutcome };
  const row: TopUpRow | undefined = await db("credit_top_ups").where({ id: topUpId }).first();
  if (!row) return { ignored: { status: "ignored", note: `no top-up ${topUpId}` } as TopUpOutcome };
  return { intent, topUp: topUpFromRow(row) };
}

/**
 * payment_intent.succeeded of an automatic top-up: grants its amount as `auto_top_up` credits once
 * (reference = the PaymentIntent id), then marks the top-up succeeded. A PaymentIntent without
 * meterline's top-up metadata (a Checkout payment) is ignored. Safe to apply again.
 */
export async function grantAutoTopUp(
  deps: { db: Db; creditCounter: Pick<CreditCounter, "adjust"> },
  object: unknown,
): Promise<TopUpOutcome> {
  const found = await topUpOfIntent(deps.db, object);
  if ("ignored" in found) return found.ignored!;
  const { intent, topUp } = found;
  const received = (intent.amount_received ?? intent.amount) * MICROS_PER_CENT;
  if (intent.currency !== "usd" || received !== topUp.amountMicros)
    throw new PermanentError(
      `payment_intent ${intent.id} not granted: ${received} µ$ ${intent.currency} received for top-up ${topUp.id} of ${topUp.amountMicros} µ$`,
      400,
    );
  const { grant, created } = await grantCredits(deps.db, {
    customerId: topUp.customerId,
    source: "auto_top_up",
    amountMicros: topUp.amountMicros,
    reference: intent.id,
  });
  if (created) await deps.creditCounter.adjust(topUp.customerId, grant.amountMicros);
  // Also from failed: a declined PaymentIntent the customer later completed did pay.
  await deps.db("credit_top_ups").where({ id: topUp.id }).update({
    status: "succeeded",
    payment_intent_id: intent.id,
    charge_lease_until: null,
    updated_at: deps.db.fn.now(),
  });
  return created
    ? { status: "processed", grantedTo: topUp.customerId }
    : { status: "processed", note: "already granted" };
}

/** payment_intent.payment_failed of an automatic top-up: fails it and alerts (once). */
export async function failAutoTopUp(
  deps: Pick<AutoTopUpDeps, "db" | "logger" | "queues">,
  object: unknown,
): Promise<TopUpOutcome> {
  const found = await topUpOfIntent(deps.db, object);
  if ("ignored" in found) return found.ignored!;
  const { intent, topUp } = found;
  const error = intent.last_payment_error;
  const reason = error?.decline_code ?? error?.code ?? "payment_failed";
  await failTopUp(deps, topUp.id, { reason, paymentIntentId: intent.id });
  return { status: "processed" };
}
