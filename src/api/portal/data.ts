import type { WebDeps } from "../../deps.js";
import { listApiKeys } from "../../billing/customers/api-keys.js";
import { findCustomer } from "../../billing/customers/customers.js";
import { creditBalance } from "../../billing/credits/balance.js";
import { usageOverTime } from "../../billing/ledger/hourly-usage.js";
import { billingPeriod } from "../../billing/ledger/periods.js";
import { usageSummary } from "../../billing/ledger/usage-summary.js";
import { findPlan } from "../../billing/pricing/plans.js";
import { formatSummary } from "../routes/usage.js";
import { meterlinePreview, stripePreview } from "./invoice-preview.js";

type Deps = Pick<WebDeps, "db" | "stripe" | "config" | "logger">;

/**
 * Everything the customer portal shows, as JSON: this period's usage summary (as GET /v1/usage),
 * usage by day, the invoice preview (Stripe's where the customer has a subscription) and the API
 * keys' last use. Undefined for an unknown customer.
 */
export async function portalData(deps: Deps, customerId: string) {
  const customer = await findCustomer(deps.db, customerId);
  if (!customer) return undefined;
  const plan = (await findPlan(deps.db, customer.planId))!;
  const period = await billingPeriod(deps.db, customerId);
  const [summary, stripe, balance, days, keys] = await Promise.all([
    usageSummary(deps.db, customerId, plan, period),
    stripePreview(deps, customerId),
    creditBalance(deps.db, customerId),
    usageOverTime(deps.db, period, { bucket: "day", customerId }),
    listApiKeys(deps.db, { customerId }),
  ]);
  const byDay = new Map<string, { requests: number; billable_tokens: number }>();
  for (const p of days) {
    const day = p.at.toISOString().slice(0, 10);
    const sum = byDay.get(day) ?? { requests: 0, billable_tokens: 0 };
    byDay.set(day, {
      requests: sum.requests + p.requests,
      billable_tokens: sum.billable_tokens + p.billableTokens,
    });
  }
  return {
    ...formatSummary(summary, balance),
    object: "portal.data",
    customer: { id: customer.id, name: customer.name },
    by_day: [...byDay].map(([day, sum]) => ({ day, ...sum })),
    invoice_preview: stripe ?? meterlinePreview(summary),
    api_keys: keys
      .filter((k) => k.revokedAt === null)
      .map((k) => ({
        prefix: k.prefix,
        created_at: k.createdAt.toISOString(),
        last_used_at: k.lastUsedAt?.toISOString() ?? null,
      })),
  };
}

export type PortalData = NonNullable<Awaited<ReturnType<typeof portalData>>>;
