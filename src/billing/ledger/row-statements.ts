import { createHash } from "node:crypto";
import type { UsageRow } from "./ledger.js";

// What the ledger's one-statement writes (plain-rows.ts, paid-rows.ts) share: usage rows as one
// array per column (unnest), and statements sent by name so that each connection parses and plans
// them once.

// One list gives both the SQL's casts and the values, so a column and its parameter cannot drift apart.
const INPUTS: ReadonlyArray<readonly [column: string, type: string, of: (r: UsageRow) => unknown]> = [
  ["request_id", "text", (r) => r.requestId],
  ["customer_id", "text", (r) => r.customerId],
  ["model", "text", (r) => r.model],
  ["prompt_tokens", "bigint", (r) => r.promptTokens],
  ["cached_tokens", "bigint", (r) => r.cachedTokens],
  ["cache_write_tokens", "bigint", (r) => r.cacheWriteTokens],
  ["completion_tokens", "bigint", (r) => r.completionTokens],
  ["reasoning_tokens", "bigint", (r) => r.reasoningTokens],
  ["billable_tokens", "bigint", (r) => r.billableTokens],
  ["provider_cost_micros", "bigint", (r) => r.providerCostMicros],
  ["price_micros", "bigint", (r) => r.priceMicros],
  ["source", "text", (r) => r.source],
  ["plan_id", "text", (r) => r.planId],
  ["price_model", "text", (r) => r.priceModel ?? null],
  ["end_user", "text", (r) => r.endUser ?? null],
  ["created_at", "timestamptz", (r) => r.createdAt?.toISOString() ?? null],
  ["included_tokens", "bigint", (r) => r.pricing.includedTokens],
  ["overage_per_1k_micros", "bigint", (r) => r.pricing.overagePer1kMicros],
];

/**
 * The rows as a relation `v` with every input column and `ord` (their order, from 1), read from
 * parameters $1.. on; `extra` adds more per-row arrays (column, type) after them.
 */
export function rowInputSql(extra: ReadonlyArray<readonly [column: string, type: string]> = []): string {
  const all = [...INPUTS.map(([column, type]) => [column, type] as const), ...extra];
  return `SELECT * FROM unnest(${all.map(([, type], i) => `CAST($${i + 1} AS ${type}[])`).join(", ")})
  WITH ORDINALITY AS v(${all.map(([column]) => column).join(", ")}, ord)`;
}

/** The parameter values of rowInputSql (before any `extra` arrays). */
export function rowValues(rows: readonly UsageRow[]): unknown[][] {
  return INPUTS.map(([, , of]) => rows.map(of));
}

/** How many parameters rowValues takes: `extra` arrays and further parameters start after them. */
export const ROW_PARAMETERS = INPUTS.length;

/** The usage row's own columns, as given; created_at and the charge columns are set by the statements. */
export const ROW_COLUMNS = INPUTS.slice(
  0,
  INPUTS.findIndex(([column]) => column === "created_at"),
)
  .map(([column]) => column)
  .join(", ");

/** A node-postgres connection as knex's pool hands it out. */
export type PgClient = {
  query<R>(config: { name: string; text: string; values: unknown[] }): Promise<{ rows: R[] }>;
};

const names = new Map<string, string>();

/**
 * Runs `text` as a named prepared statement: each connection parses it once and then reuses its
 * plan, where a plain query would be parsed and planned again for every group of rows.
 */
export async function runPrepared<R>(conn: PgClient, text: string, values: unknown[]): Promise<R[]> {
  let name = names.get(text);
  if (!name) {
    name = `meterline_${createHash("sha256").update(text).digest("hex").slice(0, 16)}`;
    names.set(text, name);
  }
  return (await conn.query<R>({ name, text, values })).rows;
}
