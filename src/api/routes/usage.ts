import { Router } from "express";
import { z } from "zod";
import type { WebDeps } from "../../deps.js";
import { periodEndsAt } from "../../billing/ledger/period-history.js";
import { billingPeriod, parseMonth, type Period } from "../../billing/ledger/periods.js";
import {
  USAGE_GROUPS,
  usageGroups,
  type UsageGroup,
  type UsageGroupBy,
} from "../../billing/ledger/usage-groups.js";
import { END_USER_MAX_CHARS } from "../../billing/end-users/limits.js";
import { creditBalance } from "../../billing/credits/balance.js";
import { listFiredAlerts, type FiredAlert } from "../../billing/alerts/fired.js";
import { usageSummary, type TokenTotals, type UsageSummary } from "../../billing/ledger/usage-summary.js";
import { badRequest, unavailable } from "../../errors.js";
import { usageBatchJobId, usageEventRequestId } from "../../platform/ids.js";
import type { UsageJobData } from "../../queues/queues.js";
import { parseInput } from "../input.js";
import { MAX_EVENTS_PER_BATCH, refuseInvoicedPeriods, validateUsageEvents } from "../usage-events.js";

type Deps = Pick<WebDeps, "config" | "db" | "queues">;

const BATCH_SIZE = `Send 1 to ${MAX_EVENTS_PER_BATCH} events per request.`;
const usageBatch = z.object({
  events: z
    .array(z.unknown(), 'The body must be {"events": [...]}.')
    .min(1, BATCH_SIZE)
    .max(MAX_EVENTS_PER_BATCH, BATCH_SIZE),
});

/** POST /v1/usage (ingest events recorded elsewhere) and GET /v1/usage (the current period). */
export function usageRoutes(deps: Deps): Router {
  const router = Router();

  router.post("/usage", async (req, res) => {
    const customer = req.customer!;
    // Only `events` is read: any other body (none, an array) is a batch without events.
    const { events } = parseInput(usageBatch, { events: req.body?.events });

    const now = new Date();
    const checked = validateUsageEvents(events, {
      defaultPrice: deps.config.defaultModelPrice,
      now,
      plan: customer.plan,
    });
    const periodEnds = await periodEndsAt(
      deps.db,
      customer.customerId,
      checked.valid.map((e) => e.timestamp),
    );
    const { valid, errors } = refuseInvoicedPeriods(checked, periodEnds, {
      now,
      graceMs: deps.config.reporting.periodGraceMs,
    });
    if (valid.length === 0) {
      const error = badRequest(
        `No event was accepted; the first problem: ${errors[0]!.message}.`,
        "invalid_events",
        errors[0]!.param,
      );
      res.status(400).json({ ...error.toBody(), errors });
      return;
    }
    const data: UsageJobData = {
      customerId: customer.customerId,
      planId: customer.plan.id,
      events: valid.map((e) => ({
        requestId: usageEventRequestId(customer.customerId, e.id),
        model: e.model,
        promptTokens: e.promptTokens,
        cachedTokens: e.cachedTokens,
        cacheWriteTokens: e.cacheWriteTokens,
        completionTokens: e.completionTokens,
        reasoningTokens: e.reasoningTokens,
        timestamp: e.timestamp.toISOString(),
        ...(e.endUser ? { endUser: e.endUser } : {}),
      })),
    };
    const jobId = usageBatchJobId(
      customer.customerId,
      data.events.map((e) => e.requestId),
    );
    try {
      await deps.queues.usage.add("ingest", data, { jobId });
    } catch (err) {
      throw unavailable("The usage queue is unavailable; retry shortly.", err);
    }
    res.status(202).json({
      object: "usage.ingestion",
      batch_id: jobId,
      accepted: valid.length,
      rejected: errors.length,
      errors,
    });
  });

  router.get("/usage", async (req, res) => {
    const customer = req.customer!;
    const query = parseInput(usageQuery, req.query);
    if (query.group_by) {
      const { group_by: groupBy, limit, starting_after: startingAfter } = query;
      const period = query.period ?? (await billingPeriod(deps.db, customer.customerId));
      const page = await usageGroups(deps.db, customer.customerId, period, { groupBy, limit, startingAfter });
      res.json(formatGroups(groupBy, period, page));
      return;
    }
    const period = await billingPeriod(deps.db, customer.customerId);
    const [summary, balance, alerts] = await Promise.all([
      usageSummary(deps.db, customer.customerId, customer.plan, period),
      creditBalance(deps.db, customer.customerId),
      listFiredAlerts(deps.db, customer.customerId, period),
    ]);
    res.json({ ...formatSummary(summary, balance), alerts: alerts.map(formatAlert) });
  });

  return router;
}

const GROUP_BY = `group_by must be one of ${USAGE_GROUPS.join(", ")}.`;
const LIMIT = "limit must be an integer from 1 to 1000.";
const PERIOD = "period must be a month, YYYY-MM (the UTC calendar month).";
const usageQuery = z
  .object({
    group_by: z.enum(USAGE_GROUPS, GROUP_BY).optional(),
    limit: z
      .string(LIMIT)
      .regex(/^\d{1,4}$/, LIMIT)
      .transform(Number)
      .refine((n) => n >= 1 && n <= 1000, LIMIT)
      .default(100),
    starting_after: z.string().max(END_USER_MAX_CHARS).optional(),
    period: z
      .string(PERIOD)
      .transform(
        (text, ctx) => parseMonth(text) ?? (ctx.addIssue({ code: "custom", message: PERIOD }), z.NEVER),
      )
      .optional(),
  })
  .refine((q) => q.group_by || (q.period === undefined && q.starting_after === undefined), {
    message: "period and starting_after page a grouped answer: add group_by (end_user, model or day).",
    params: { code: "missing_required_parameter" },
    path: ["group_by"],
  });

/** GET /v1/usage?group_by=…: one page of "who used what", Stripe-style (`starting_after` = the last key). */
function formatGroups(
  groupBy: UsageGroupBy,
  period: Period,
  { groups, hasMore }: { groups: UsageGroup[]; hasMore: boolean },
) {
  const last = groups.at(-1);
  return {
    object: "list",
    group_by: groupBy,
    period: { start: period.start.toISOString(), end: period.end.toISOString(), source: period.source },
    data: groups.map((g) => ({ [groupBy]: g.key, ...tokensOf(g), charge_micros: g.chargeMicros })),
    has_more: hasMore,
    // The cursor of the next page; the no-end-user group ('' as a key) always comes first.
    next_starting_after: hasMore && last ? (last.key ?? "") : null,
  };
}

/** An alert fired this period, as GET /v1/usage lists it. */
const formatAlert = (a: FiredAlert) => ({
  id: a.id,
  rule_id: a.ruleId,
  kind: a.kind,
  threshold: a.threshold,
  value: a.value,
  fired_at: a.firedAt.toISOString(),
  recovered_at: a.recoveredAt?.toISOString() ?? null,
});

const tokensOf = (t: TokenTotals) => ({
  requests: t.requests,
  prompt_tokens: t.promptTokens,
  cached_tokens: t.cachedTokens,
  cache_write_tokens: t.cacheWriteTokens,
  completion_tokens: t.completionTokens,
  reasoning_tokens: t.reasoningTokens,
  billable_tokens: t.billableTokens,
});

/** The usage summary as GET /v1/usage (and the customer portal) answer it. */
export function formatSummary(s: UsageSummary, balanceMicros: number) {
  const limit = s.plan.hardLimitTokens;
  return {
    object: "usage.summary",
    period: { start: s.period.start.toISOString(), end: s.period.end.toISOString(), source: s.period.source },
    plan: {
      id: s.plan.id,
      name: s.plan.name,
      kind: s.plan.kind,
      base_fee_micros: s.plan.baseFeeMicros,
      included_tokens: s.plan.includedTokens,
      overage_per_1k_micros: s.plan.overagePer1kMicros,
      hard_limit_tokens: limit,
    },
    tokens: tokensOf(s.totals),
    by_model: s.byModel.map((m) => ({ model: m.model, ...tokensOf(m) })),
    allowance: {
      included_tokens: s.charge.includedTokens,
      used_tokens: s.charge.includedUsedTokens,
      remaining_tokens: s.charge.includedRemainingTokens,
    },
    overage_tokens: s.charge.overageTokens,
    hard_limit:
      limit === null
        ? null
        : { limit_tokens: limit, remaining_tokens: Math.max(0, limit - s.totals.billableTokens) },
    credits: {
      balance_micros: balanceMicros,
      paid_tokens: s.credits.paidTokens,
      paid_micros: s.credits.paidMicros,
    },
    charges: {
      currency: "usd",
      base_fee_micros: s.charge.baseFeeMicros,
      // Usage past the allowance as it was charged, request by request; credits paid part of it.
      usage_micros: s.credits.chargedMicros,
      credits_paid_micros: s.credits.paidMicros,
      // What the invoice charges for the overage credits did not pay.
      overage_micros: s.charge.overageMicros,
      total_micros: s.charge.totalMicros,
    },
  };
}
