import type { Knex } from "knex";
import type { Db } from "../../platform/db.js";
import type { Period } from "./periods.js";
import type { TokenTotals } from "./usage-summary.js";
import { exactSum } from "./usage-bounds.js";
import { usageSource } from "./usage-totals.js";

/** What "who used what" is grouped by. */
export const USAGE_GROUPS = ["end_user", "model", "day"] as const;
export type UsageGroupBy = (typeof USAGE_GROUPS)[number];

/** One group's usage: `key` is the end user (null: usage for no end user), the model, or the UTC day. */
export type UsageGroup = TokenTotals & { key: string | null; chargeMicros: number };

// Compared and ordered bytewise (COLLATE "C"), so a page's cursor means the same on every server.
// Usage for no end user groups under '' — first, and after no cursor (a cursor is never empty).
// Model and day group the hourly rollup (usage-totals.ts: `at` is the hour, or an edge row's time);
// end users group the ledger's rows, read by the (customer, end user, time) index, as the rollup
// has no end user.
const KEY_SQL: Record<UsageGroupBy, string> = {
  end_user: `coalesce(end_user, '') COLLATE "C"`,
  model: `model COLLATE "C"`,
  day: `to_char(at AT TIME ZONE 'UTC', 'YYYY-MM-DD') COLLATE "C"`,
};

/**
 * A customer's usage in a period grouped by end user, model or UTC day, in key order: one page of
 * `limit` groups after the key `startingAfter`, and whether more follow.
 */
export async function usageGroups(
  db: Db,
  customerId: string,
  period: Period,
  page: { groupBy: UsageGroupBy; limit: number; startingAfter?: string | undefined },
): Promise<{ groups: UsageGroup[]; hasMore: boolean }> {
  const key = KEY_SQL[page.groupBy];
  const rowsOrHours: Knex.QueryBuilder =
    page.groupBy === "end_user"
      ? db("usage_events")
          .where({ customer_id: customerId })
          .where("created_at", ">=", period.start)
          .where("created_at", "<", period.end)
          .select(db.raw("count(*) AS requests"))
      : db.from(usageSource(db, period, { customerId })).sum({ requests: "requests" });
  const query = rowsOrHours
    .groupByRaw(key)
    .orderByRaw(key)
    .limit(page.limit + 1)
    .select(db.raw(`${key} AS key`))
    .sum({
      prompt: "prompt_tokens",
      cached: "cached_tokens",
      cacheWrite: "cache_write_tokens",
      completion: "completion_tokens",
      reasoning: "reasoning_tokens",
      billable: "billable_tokens",
      charge: "charge_micros",
    });
  if (page.startingAfter !== undefined) query.whereRaw(`${key} > ?`, [page.startingAfter]);
  const rows: Array<Record<string, unknown>> = await query;
  const exact = (r: Record<string, unknown>, column: string) =>
    exactSum(r[column] as string, `${customerId}'s ${column} of ${page.groupBy} ${String(r.key)}`);
  const groups = rows.slice(0, page.limit).map((r) => ({
    key: r.key === "" ? null : String(r.key),
    requests: Number(r.requests),
    promptTokens: exact(r, "prompt"),
    cachedTokens: exact(r, "cached"),
    cacheWriteTokens: exact(r, "cacheWrite"),
    completionTokens: exact(r, "completion"),
    reasoningTokens: exact(r, "reasoning"),
    billableTokens: exact(r, "billable"),
    chargeMicros: exact(r, "charge"),
  }));
  return { groups, hasMore: rows.length > page.limit };
}
