import type { Knex } from "knex";
import type { UsageRow } from "./ledger.js";
import {
  allowanceRemaining,
  claimAndPlaceSql,
  overageTokens,
  tokensAffordable,
  type RowCharge,
} from "./charges.js";
import { addToDailySql, addToHourlySql } from "./hourly-usage.js";
import { listPriceMicros } from "../pricing/plans.js";
import { drawFromGrants } from "../credits/consume.js";
import {
  ROW_COLUMNS,
  ROW_PARAMETERS,
  rowInputSql,
  rowValues,
  runPrepared,
  type PgClient,
} from "./row-statements.js";

/** What writePaidRows did: the rows it inserted, each with its charge and time, and the repeats. */
export interface PaidWritten {
  charges: Map<string, RowCharge>;
  createdAt: Map<string, Date>;
  /** Request ids already in the ledger: nothing was written for them. */
  repeats: Set<string>;
}

// 1. Claim each request id and add the claimed rows to their period totals (locked in customer
//    order), returning each row's period total before it and whether its customer has a credit account.
const CLAIM = `WITH x AS (
       SELECT x.*, coalesce(x.created_at, now()) AS at
       FROM unnest(CAST($1 AS text[]), CAST($2 AS text[]), CAST($3 AS bigint[]), CAST($4 AS timestamptz[]))
         WITH ORDINALITY AS x(request_id, customer_id, billable_tokens, created_at, ord)
     ),
     ${claimAndPlaceSql("x")}
     SELECT p.request_id, p.at, p.before,
            EXISTS (SELECT 1 FROM credit_accounts a WHERE a.customer_id = p.customer_id) AS has_account
     FROM placed p
     ORDER BY p.ord`;

// 2. Lock the credit accounts, in customer order, after the period totals, as every ledger writer
//    does. A statement of its own: a statement reads at the snapshot it started with, so grants read
//    by the statement that waited for the lock could predate what its holder (a void, an expiry, a
//    top-up) committed.
const LOCK = `SELECT customer_id FROM credit_accounts WHERE customer_id = ANY(CAST($1 AS text[]))
     ORDER BY customer_id FOR UPDATE`;

// 3. What each locked account can spend: its live grants in drawing order (an account with none
//    comes back once with no grant).
const GRANTS = `SELECT l.customer_id, g.id, g.remaining_micros
     FROM unnest(CAST($1 AS text[])) AS l(customer_id)
     LEFT JOIN credit_grants g ON g.customer_id = l.customer_id
       AND g.remaining_micros > 0 AND (g.expires_at IS NULL OR g.expires_at > now())
     ORDER BY l.customer_id, g.expires_at ASC NULLS LAST, g.id`;

// 4. Write it all: the rows with their charges, what credits paid (consumptions, the grants drawn,
//    the credit ledger's entries, in drawing order) and the hourly and daily rollups.
const PAID = ["at", "charge_micros", "credit_tokens", "credit_micros"] as const;
const at = ROW_PARAMETERS + PAID.length;
const WRITE = `WITH v AS (${rowInputSql([
  ["at", "timestamptz"],
  ["charge_micros", "bigint"],
  ["credit_tokens", "bigint"],
  ["credit_micros", "bigint"],
])}),
     inserted AS (
       INSERT INTO usage_events (${ROW_COLUMNS}, created_at, ${PAID.slice(1).join(", ")})
       SELECT ${ROW_COLUMNS}, ${PAID.join(", ")} FROM v ORDER BY ord
       RETURNING 1
     ),
     consumed AS (
       INSERT INTO credit_consumptions (request_id, customer_id, requested_micros, covered_micros)
       SELECT * FROM unnest(CAST($${at + 1} AS text[]), CAST($${at + 2} AS text[]),
                            CAST($${at + 3} AS bigint[]), CAST($${at + 4} AS bigint[]))
       RETURNING 1
     ),
     drawn AS (
       UPDATE credit_grants g SET remaining_micros = g.remaining_micros - d.take
       FROM unnest(CAST($${at + 5} AS bigint[]), CAST($${at + 6} AS bigint[])) AS d(id, take)
       WHERE g.id = d.id
       RETURNING 1
     ),
     entries AS (
       INSERT INTO credit_entries (customer_id, kind, grant_id, request_id, amount_micros)
       SELECT customer_id, 'consumption', grant_id, request_id, -amount
       FROM unnest(CAST($${at + 7} AS text[]), CAST($${at + 8} AS bigint[]), CAST($${at + 9} AS text[]),
                   CAST($${at + 10} AS bigint[]))
         WITH ORDINALITY AS e(customer_id, grant_id, request_id, amount, ord)
       ORDER BY ord
       RETURNING 1
     ),
     hourly AS (${addToHourlySql("v", "at")}),
     daily AS (${addToDailySql("v", "at")})
     SELECT (SELECT count(*) FROM inserted) AS inserted, (SELECT count(*) FROM consumed) AS consumed,
            (SELECT count(*) FROM drawn) AS drawn, (SELECT count(*) FROM entries) AS entries`;

type Claimed = { request_id: string; at: Date; before: number; has_account: boolean };
type Grant = { id: number; remaining_micros: number };

/**
 * The ledger write of rows that may be paid from credits, or that must share a transaction with
 * more (a kept chat's answer): inside `trx`, in four statements whatever the number of rows —
 * claim and place them, lock their customers' credit accounts, read their grants, then write the
 * rows, the credits they drew and the rollups. It is the one place that decides who pays for a token (README
 * "Credits"): every token past the period's allowance is paid exactly once, by credits when the
 * balance covers it at the moment its row is written (drawn from the grant expiring first, across
 * as many as it takes), otherwise on the invoice; a token credits paid is counted in
 * `credit_tokens` and never reported to Stripe. Rows are paid in the order given. `rows` must not repeat a
 * request id.
 */
export async function writePaidRows(trx: Knex.Transaction, rows: readonly UsageRow[]): Promise<PaidWritten> {
  // Inside a transaction knex hands out the transaction's own connection.
  const conn = (await trx.client.acquireConnection()) as PgClient;
  const written: PaidWritten = { charges: new Map(), createdAt: new Map(), repeats: new Set() };
  const claimed = await runPrepared<Claimed>(conn, CLAIM, [
    rows.map((r) => r.requestId),
    rows.map((r) => r.customerId),
    rows.map((r) => r.billableTokens),
    rows.map((r) => r.createdAt?.toISOString() ?? null),
  ]);
  const placed = new Map(claimed.map((c) => [c.request_id, c]));
  for (const r of rows) if (!placed.has(r.requestId)) written.repeats.add(r.requestId);
  if (claimed.length === 0) return written;

  const customerOf = new Map(rows.map((r) => [r.requestId, r.customerId]));
  const withAccounts = [
    ...new Set(claimed.filter((c) => c.has_account).map((c) => customerOf.get(c.request_id)!)),
  ].sort();
  const grants = new Map<string, Grant[]>();
  const locked =
    withAccounts.length > 0
      ? (await runPrepared<{ customer_id: string }>(conn, LOCK, [withAccounts])).map((a) => a.customer_id)
      : [];
  if (locked.length > 0)
    for (const g of await runPrepared<{ customer_id: string } & Partial<Grant>>(conn, GRANTS, [locked])) {
      const list = grants.get(g.customer_id) ?? [];
      grants.set(g.customer_id, list);
      if (g.id != null) list.push({ id: g.id, remaining_micros: g.remaining_micros! });
    }
  const balances = new Map([...grants].map(([c, list]) => [c, sum(list.map((g) => g.remaining_micros))]));

  const fresh: UsageRow[] = [];
  const paid = { at: [] as string[], charge: [] as number[], tokens: [] as number[], credit: [] as number[] };
  const consumed = {
    request: [] as string[],
    customer: [] as string[],
    requested: [] as number[],
    covered: [] as number[],
  };
  const entries = {
    customer: [] as string[],
    grant: [] as number[],
    request: [] as string[],
    micros: [] as number[],
  };
  const takes = new Map<number, number>();
  for (const row of rows) {
    const place = placed.get(row.requestId);
    if (!place) continue;
    const start = place.before;
    const { includedTokens } = row.pricing;
    const overage = overageTokens(includedTokens, start, row.billableTokens);
    const chargeMicros = listPriceMicros(row.pricing, overage);
    let creditTokens = 0;
    let creditMicros = 0;
    const balance = balances.get(row.customerId);
    if (balance !== undefined && chargeMicros > 0 && balance > 0) {
      creditTokens = tokensAffordable(row.pricing, overage, balance);
      const wanted = listPriceMicros(row.pricing, creditTokens);
      if (wanted > 0) {
        // Within the balance read under the account's lock, so the grants cover all of it.
        for (const { grant, take } of drawFromGrants(grants.get(row.customerId)!, wanted)) {
          grant.remaining_micros -= take;
          takes.set(grant.id, (takes.get(grant.id) ?? 0) + take);
          entries.customer.push(row.customerId);
          entries.grant.push(grant.id);
          entries.request.push(row.requestId);
          entries.micros.push(take);
          creditMicros += take;
        }
        consumed.request.push(row.requestId);
        consumed.customer.push(row.customerId);
        consumed.requested.push(wanted);
        consumed.covered.push(creditMicros);
        balances.set(row.customerId, balance - creditMicros);
      }
    }
    written.charges.set(row.requestId, {
      chargeMicros,
      creditTokens,
      creditMicros,
      creditBalanceMicros: balances.get(row.customerId) ?? null,
      allowanceRemainingTokens: allowanceRemaining(includedTokens, start + row.billableTokens),
    });
    written.createdAt.set(row.requestId, place.at);
    fresh.push(row);
    paid.at.push(place.at.toISOString());
    paid.charge.push(chargeMicros);
    paid.tokens.push(creditTokens);
    paid.credit.push(creditMicros);
  }

  await runPrepared(conn, WRITE, [
    ...rowValues(fresh),
    paid.at,
    paid.charge,
    paid.tokens,
    paid.credit,
    consumed.request,
    consumed.customer,
    consumed.requested,
    consumed.covered,
    [...takes.keys()],
    [...takes.values()],
    entries.customer,
    entries.grant,
    entries.request,
    entries.micros,
  ]);
  return written;
}

const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);
