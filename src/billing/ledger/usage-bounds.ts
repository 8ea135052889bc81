import { SumOutOfRangeError } from "../../errors.js";

/**
 * The largest numbers meterline accepts, and the checks that keep sums of them exact. Bounds per
 * event keep one customer's input from overflowing anyone's sums; the ledger's own limit (the
 * largest safe integer, enforced by a CHECK) keeps every int8 read as a JS number exact.
 */

/** Per ingested event, for each of `prompt_tokens` and `completion_tokens` (their subsets follow). */
export const MAX_TOKENS_PER_EVENT = 1_000_000_000;

/**
 * Per ingested event, for both its provider cost and its list price: $5,000. Below it a cost is
 * computed exactly in doubles (tokens × price per 1M stays under 2^53).
 */
export const MAX_MICROS_PER_EVENT = 5_000_000_000;

/**
 * The largest meter-event value meterline sends: the int8 parser (src/platform/db.ts) and the emulator read
 * values as JS numbers, so nothing past 2^53 - 1 can be sent or read back exactly.
 */
export const MAX_REPORT_VALUE = Number.MAX_SAFE_INTEGER;

/**
 * A Postgres sum (numeric, which pg returns as text, so it never overflows on the way) as a JS
 * number, or a SumOutOfRangeError naming `what` when it would not be exact.
 */
export function exactSum(value: string | number | null | undefined, what: string): number {
  if (value === null || value === undefined) return 0;
  const text = String(value);
  if (!/^\d+$/.test(text)) throw new SumOutOfRangeError(what, text);
  const n = Number(text);
  if (!Number.isSafeInteger(n)) throw new SumOutOfRangeError(what, text);
  return n;
}

/** a + b for sums already exact, or a SumOutOfRangeError naming `what`. */
export function addExact(a: number, b: number, what: string): number {
  const sum = a + b;
  if (!Number.isSafeInteger(sum)) throw new SumOutOfRangeError(what);
  return sum;
}
