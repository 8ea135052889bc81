import type { Knex } from "knex";
import type { Db } from "../../platform/db.js";
import { SUMMED } from "./hourly-usage.js";
import type { Period } from "./periods.js";

const HOUR_MS = 3_600_000;

/**
 * `range` cut into the whole UTC hours it spans, read from `usage_hourly`, and the parts of hours
 * at its edges, read from the ledger. A subscription period may start and end at any second; its
 * edge hours hold at most two hours of a customer's rows, read by an index range.
 */
export function splitHours(range: Pick<Period, "start" | "end">): {
  whole: { start: Date; end: Date } | null;
  edges: Array<{ start: Date; end: Date }>;
} {
  const start = range.start.getTime();
  const end = range.end.getTime();
  const firstWhole = Math.ceil(start / HOUR_MS) * HOUR_MS;
  const lastWhole = Math.floor(end / HOUR_MS) * HOUR_MS;
  if (firstWhole >= lastWhole)
    return { whole: null, edges: start < end ? [{ start: range.start, end: range.end }] : [] };
  const edges = [];
  if (start < firstWhole) edges.push({ start: range.start, end: new Date(firstWhole) });
  if (lastWhole < end) edges.push({ start: new Date(lastWhole), end: range.end });
  return { whole: { start: new Date(firstWhole), end: new Date(lastWhole) }, edges };
}

/**
 * The usage of `range` — of one customer, or of all — as rows of (customer_id, model, at,
 * requests, …SUMMED): rollup hours for the whole hours, ledger rows (requests 1) for the edges.
 * Sums over it equal sums over the ledger's rows in `range`, exactly; `at` is the hour or the
 * row's time, so it groups by UTC day too. A subquery aliased `alias`, for `db.from`.
 */
export function usageSource(
  db: Db,
  range: Pick<Period, "start" | "end">,
  opts: { customerId?: string; alias?: string } = {},
): Knex.Raw {
  const { whole, edges } = splitHours(range);
  const customer = opts.customerId === undefined ? [] : [opts.customerId];
  const where = opts.customerId === undefined ? "" : "customer_id = ? AND ";
  const columns = SUMMED.join(", ");
  const parts: string[] = [];
  const bindings: Knex.RawBinding[] = [];
  if (whole) {
    parts.push(
      `SELECT customer_id, model, hour AS at, requests, ${columns}
       FROM usage_hourly WHERE ${where}hour >= ? AND hour < ?`,
    );
    bindings.push(...customer, whole.start, whole.end);
  }
  for (const edge of edges) {
    parts.push(
      `SELECT customer_id, model, created_at AS at, 1::bigint AS requests, ${columns}
       FROM usage_events WHERE ${where}created_at >= ? AND created_at < ?`,
    );
    bindings.push(...customer, edge.start, edge.end);
  }
  // An empty range: no rows, of the same shape.
  if (parts.length === 0)
    parts.push(`SELECT customer_id, model, hour AS at, requests, ${columns} FROM usage_hourly WHERE false`);
  return db.raw(`(${parts.join("\n UNION ALL ")}) AS ${opts.alias ?? "s"}`, bindings);
}
