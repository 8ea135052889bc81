import type { Db } from "../../platform/db.js";
import type { UsageRow } from "./ledger.js";
import type { RowCharge } from "./charges.js";
import { addToDailySql, addToHourlySql } from "./hourly-usage.js";
import { allowanceRemaining, claimAndPlaceSql } from "./charges.js";
import { ROW_COLUMNS, rowInputSql, rowValues, runPrepared, type PgClient } from "./row-statements.js";

/** What writePlainRows did: the charges of the rows it inserted, and the rows it left to the caller. */
export interface PlainWritten {
  /** Request ids this call inserted, each with its charge. */
  charges: Map<string, RowCharge>;
  /** The time each inserted row was written at (its own, or the statement's). */
  createdAt: Map<string, Date>;
  /** Request ids it did not write because their customer has a credit account (paid-rows.ts pays those). */
  withCredits: Set<string>;
  /** Request ids already in the ledger: nothing was written for them. */
  repeats: Set<string>;
}

type PlainRow = {
  request_id: string;
  state: "charged" | "credits" | "repeat";
  // int8 arrives as a number (src/platform/db.ts).
  charge_micros: number | null;
  before: number | null;
  included_tokens: number;
  billable_tokens: number;
  at: Date | null;
};

const STATEMENT = `WITH v AS (${rowInputSql()}),
     plain AS (
       SELECT v.*, coalesce(v.created_at, now()) AS at FROM v
       WHERE NOT EXISTS (SELECT 1 FROM credit_accounts a WHERE a.customer_id = v.customer_id)
     ),
     ${claimAndPlaceSql("plain")},
     priced AS (
       -- charges.ts: the list price (half up, in micros) of the tokens past the period's allowance;
       -- bigint division, which floors a non-negative quotient. Credits pay none of these rows.
       SELECT p.*,
              (2 * (greatest(0, p.before + p.billable_tokens - p.included_tokens) - greatest(0, p.before - p.included_tokens))
                 * p.overage_per_1k_micros + 1000) / 2000 AS charge_micros,
              0::bigint AS credit_tokens, 0::bigint AS credit_micros
       FROM placed p
     ),
     inserted AS (
       INSERT INTO usage_events (${ROW_COLUMNS}, created_at, charge_micros)
       SELECT ${ROW_COLUMNS}, at, charge_micros FROM priced ORDER BY ord
       RETURNING request_id
     ),
     hourly AS (${addToHourlySql("priced", "at")}),
     daily AS (${addToDailySql("priced", "at")})
     SELECT v.request_id,
            CASE WHEN p.request_id IS NULL THEN 'credits' WHEN i.request_id IS NULL THEN 'repeat' ELSE 'charged' END AS state,
            pr.charge_micros, pr.before, pr.at, v.included_tokens, v.billable_tokens
     FROM v
     LEFT JOIN plain p USING (request_id)
     LEFT JOIN (SELECT request_id FROM inserted) i USING (request_id)
     LEFT JOIN priced pr USING (request_id)
     ORDER BY v.ord`;

/**
 * The whole ledger write of rows whose customers have no credit account, as ONE statement (one
 * round trip, its own transaction): claim each request id in `usage_requests`, add the rows to their
 * period totals, price them past the allowance from the totals before them, insert them with their
 * charge, and add them to the hourly and daily rollups. It does what writePaidRows does for such rows
 * — the same period, the same rounding, the same lock order (request id, then period totals and
 * rollups in key order) — in one trip instead of three.
 *
 * Rows of a customer with a credit account are not written: credits are paid row by row under the
 * account's lock (paid-rows.ts), and those rows go that way. A credit account made after this
 * statement's snapshot pays from the next row on, as it would for a row whose transaction had
 * already locked the accounts. `rows` must not repeat a request id.
 */
export async function writePlainRows(db: Db, rows: readonly UsageRow[]): Promise<PlainWritten> {
  const conn = (await db.client.acquireConnection()) as PgClient;
  let out: PlainRow[];
  try {
    out = await runPrepared<PlainRow>(conn, STATEMENT, rowValues(rows));
  } finally {
    await db.client.releaseConnection(conn);
  }
  const written: PlainWritten = {
    charges: new Map(),
    createdAt: new Map(),
    withCredits: new Set(),
    repeats: new Set(),
  };
  for (const o of out) {
    if (o.state === "credits") written.withCredits.add(o.request_id);
    else if (o.state === "repeat") written.repeats.add(o.request_id);
    else {
      written.createdAt.set(o.request_id, new Date(o.at!));
      written.charges.set(o.request_id, {
        chargeMicros: o.charge_micros!,
        creditTokens: 0,
        creditMicros: 0,
        creditBalanceMicros: null,
        allowanceRemainingTokens: allowanceRemaining(o.included_tokens, o.before! + o.billable_tokens),
      });
    }
  }
  return written;
}
