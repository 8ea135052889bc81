import type { CreditEntry, CreditSource } from "../billing/credits/account.js";
import { creditBalance, creditLedger } from "../billing/credits/balance.js";
import { grantCredits, voidGrant } from "../billing/credits/grants.js";
import { evaluateBalanceAlerts } from "../billing/alerts/evaluate.js";
import { stripeCustomerIdOf, topUpAmountProblem } from "../billing/credits/checkout.js";
import { setAutoTopUp } from "../billing/credits/top-ups.js";
import { formatMicros } from "../billing/pricing/money.js";
import { optionalFlag, requireFlag, type CliContext } from "./context.js";
import { NotFoundError, UsageError } from "../errors.js";

/** What an operator may grant by hand; purchased and auto_top_up grants come from Stripe. */
const OPERATOR_SOURCES: readonly CreditSource[] = ["manual", "promotional"];

function amountFlag(ctx: CliContext): number {
  const value = requireFlag(ctx, "amount-micros");
  if (!/^[1-9]\d*$/.test(value) || !Number.isSafeInteger(Number(value)))
    throw new UsageError("--amount-micros must be a positive integer (micro-dollars: 1000000 = $1)");
  return Number(value);
}

function expiresFlag(ctx: CliContext): Date | undefined {
  const value = optionalFlag(ctx, "expires");
  if (value === undefined) return undefined;
  const date = new Date(value);
  if (!/^\d{4}-\d{2}-\d{2}/.test(value) || Number.isNaN(date.getTime()))
    throw new UsageError("--expires must be an ISO date, e.g. 2027-01-31 or 2027-01-31T12:00:00Z");
  return date;
}

/** credits:grant: idempotent with --reference (a repeat prints the grant the first one made). */
export async function creditsGrant(ctx: CliContext): Promise<void> {
  const source = optionalFlag(ctx, "source") ?? "manual";
  if (!OPERATOR_SOURCES.includes(source as CreditSource))
    throw new UsageError(`--source must be one of ${OPERATOR_SOURCES.join(", ")}`);
  const input = {
    customerId: requireFlag(ctx, "customer"),
    amountMicros: amountFlag(ctx),
    expiresAt: expiresFlag(ctx),
    source: source as CreditSource,
    reference: optionalFlag(ctx, "reference"),
  };
  const { grant, created } = await grantCredits(ctx.db(), input);
  if (grant.customerId !== input.customerId)
    throw new UsageError(`--reference ${input.reference} was already used for customer ${grant.customerId}`);
  // Real-time spending sees the grant at once (src/billing/credits/counter.ts).
  if (created) {
    await ctx.deps().creditCounter.adjust(grant.customerId, grant.amountMicros);
    await evaluateBalanceAlerts(ctx.deps(), grant.customerId);
  }
  const expires = grant.expiresAt ? `, expires ${grant.expiresAt.toISOString()}` : "";
  ctx.print(
    `${created ? "granted" : "already granted (same reference):"} ${formatMicros(grant.amountMicros, 2)} ` +
      `to ${grant.customerId} as grant ${grant.id} (${grant.source}${expires})`,
    { ...grant, created },
  );
}

/** credits:void: takes what is left of a grant out of the balance; a repeat voids nothing more. */
export async function creditsVoid(ctx: CliContext): Promise<void> {
  const grantId = positiveFlag(ctx, "grant");
  if (grantId === undefined) throw new UsageError("--grant <grant id> is required");
  const { customerId, voidedMicros } = await voidGrant(ctx.db(), grantId);
  await ctx.deps().creditCounter.adjust(customerId, -voidedMicros);
  if (voidedMicros > 0) await evaluateBalanceAlerts(ctx.deps(), customerId);
  ctx.print(`voided ${formatMicros(voidedMicros, 6)} of grant ${grantId} (${customerId})`, {
    grant_id: grantId,
    customer_id: customerId,
    voided_micros: voidedMicros,
  });
}

async function knownCustomer(ctx: CliContext): Promise<string> {
  const customerId = requireFlag(ctx, "customer");
  if (!(await ctx.db()("customers").where({ id: customerId }).first("id")))
    throw new NotFoundError(`no customer "${customerId}"`);
  return customerId;
}

export async function creditsBalance(ctx: CliContext): Promise<void> {
  const customerId = await knownCustomer(ctx);
  const balance = await creditBalance(ctx.db(), customerId);
  ctx.print(`${customerId}: ${formatMicros(balance, 6)} in credits`, { balance_micros: balance });
}

const describeEntry = (e: CreditEntry) =>
  `${String(e.id).padStart(8)}  ${e.createdAt.toISOString()}  ${e.kind.padEnd(11)}  ` +
  `${String(e.amountMicros).padStart(14)} µ$  grant ${e.grantId}${e.requestId ? `  request ${e.requestId}` : ""}`;

/** credits:ledger: the newest entries first (--limit, default 50; --before <entry id> pages on). */
export async function creditsLedger(ctx: CliContext): Promise<void> {
  const customerId = await knownCustomer(ctx);
  const page = { limit: positiveFlag(ctx, "limit"), before: positiveFlag(ctx, "before") };
  const entries = await creditLedger(ctx.db(), customerId, page);
  ctx.print(entries.length ? entries.map(describeEntry).join("\n") : "no credit entries", entries);
}

function positiveFlag(ctx: CliContext, name: string): number | undefined {
  const value = optionalFlag(ctx, name);
  if (value === undefined) return undefined;
  if (!/^[1-9]\d{0,14}$/.test(value)) throw new UsageError(`--${name} must be a positive integer`);
  return Number(value);
}

/** A whole-cents top-up amount within the checkout bounds (the same rule as the API's). */
function topUpAmountFlag(ctx: CliContext, name: string): number {
  const value = requireFlag(ctx, name);
  const problem = /^\d{1,16}$/.test(value)
    ? topUpAmountProblem(Number(value), ctx.config.creditCheckout)
    : "must be an integer";
  if (problem) throw new UsageError(`--${name} ${problem}`);
  return Number(value);
}

function countFlag(ctx: CliContext, name: string, min: number, max: number): number {
  const value = requireFlag(ctx, name);
  if (!/^\d{1,16}$/.test(value) || Number(value) < min || Number(value) > max)
    throw new UsageError(`--${name} must be an integer from ${min} to ${max}`);
  return Number(value);
}

/**
 * credits:auto-top-up: sets a customer's automatic top-up (README "Top-ups"), or turns it off with
 * --off. Saving again also resumes automatic top-ups paused by a failed one.
 */
export async function creditsAutoTopUp(ctx: CliContext): Promise<void> {
  const customerId = await knownCustomer(ctx);
  const off = ctx.flags.off === true;
  const settings = off
    ? { enabled: false as const }
    : {
        thresholdMicros: countFlag(ctx, "threshold-micros", 0, Number.MAX_SAFE_INTEGER),
        amountMicros: topUpAmountFlag(ctx, "amount-micros"),
        maxPerMonth: countFlag(ctx, "max-per-month", 1, 1_000),
      };
  if (!off && !(await stripeCustomerIdOf(ctx.db(), customerId)))
    throw new UsageError(`customer ${customerId} is not linked to a Stripe customer: it cannot be charged`);
  const saved = await setAutoTopUp(ctx.db(), customerId, settings);
  ctx.print(
    saved.enabled
      ? `${customerId}: below ${formatMicros(saved.thresholdMicros, 2)} buy ${formatMicros(saved.amountMicros, 2)} ` +
          `of credits, at most ${saved.maxPerMonth} times a month`
      : `${customerId}: automatic top-up off`,
    { customer_id: customerId, ...saved },
  );
}
