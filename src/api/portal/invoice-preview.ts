import type { WebDeps } from "../../deps.js";
import type { UsageSummary } from "../../billing/ledger/usage-summary.js";
import { ENDED_STATUSES } from "../../billing/webhooks/subscriptions.js";

type Deps = Pick<WebDeps, "db" | "stripe" | "config" | "logger">;

export interface InvoicePreview {
  /** "stripe": Stripe's own preview of the subscription's next invoice; "meterline": our rating. */
  source: "stripe" | "meterline";
  currency: "usd";
  lines: Array<{ description: string; amount_micros: number }>;
  total_micros: number;
}

/** One cent is 10,000 micro-dollars. */
const MICROS_PER_CENT = 10_000;

/**
 * The invoice this period would produce now, by meterline's own rating (periodCharge, the same
 * numbers GET /v1/usage answers): the base fee and the overage credits did not pay.
 */
export function meterlinePreview(s: UsageSummary): InvoicePreview {
  const lines = [{ description: `${s.plan.name} base fee`, amount_micros: s.charge.baseFeeMicros }];
  const invoiced = s.charge.overageTokens - s.charge.creditTokens;
  if (invoiced > 0)
    lines.push({
      description: `${invoiced} tokens past the allowance`,
      amount_micros: s.charge.overageMicros,
    });
  return { source: "meterline", currency: "usd", lines, total_micros: s.charge.totalMicros };
}

/** The customer's live Stripe subscription (newest period first), if meterline knows one. */
async function liveSubscription(deps: Deps, customerId: string) {
  return deps
    .db("subscriptions")
    .where({ customer_id: customerId })
    .whereNotIn("status", ENDED_STATUSES)
    .orderBy("current_period_start", "desc")
    .first<{ id: string; stripe_customer_id: string } | undefined>("id", "stripe_customer_id");
}

/** What an operator needs from a failed Stripe call, without the request or its key. */
function failure(err: unknown) {
  if (typeof err !== "object" || err === null) return { message: String(err) };
  const e = err as {
    type?: string;
    code?: string;
    statusCode?: number;
    requestId?: string;
    message?: string;
  };
  return { type: e.type, code: e.code, statusCode: e.statusCode, requestId: e.requestId, message: e.message };
}

/**
 * Stripe's `invoices.createPreview` of the customer's live subscription, when there is one and
 * Stripe answers within PORTAL_STRIPE_TIMEOUT_MS; else undefined (with a warning in the log when
 * Stripe was asked and failed), and the portal shows meterlinePreview instead.
 */
export async function stripePreview(deps: Deps, customerId: string): Promise<InvoicePreview | undefined> {
  if (!deps.stripe) return undefined;
  const sub = await liveSubscription(deps, customerId);
  if (!sub) return undefined;
  const timeoutMs = deps.config.portal.stripeTimeoutMs;
  try {
    // No retries: a second attempt would double the wait of a page a person is looking at.
    const invoice = await deps.stripe.invoices.createPreview(
      { customer: sub.stripe_customer_id, subscription: sub.id },
      { timeout: timeoutMs, maxNetworkRetries: 0 },
    );
    if (invoice.currency !== "usd") throw new Error(`the preview is in ${invoice.currency}, not usd`);
    // Stripe's amounts are integer cents: × 10,000 is exact in micro-dollars.
    return {
      source: "stripe",
      currency: "usd",
      lines: invoice.lines.data.map((l) => ({
        description: l.description ?? "",
        amount_micros: l.amount * MICROS_PER_CENT,
      })),
      total_micros: invoice.total * MICROS_PER_CENT,
    };
  } catch (err) {
    deps.logger.warn(
      { customerId, subscription: sub.id, timeoutMs, err: failure(err) },
      "Stripe invoice preview failed or took longer than PORTAL_STRIPE_TIMEOUT_MS; the portal shows meterline's own rating. Check Stripe's status and the subscription, or raise PORTAL_STRIPE_TIMEOUT_MS",
    );
    return undefined;
  }
}
