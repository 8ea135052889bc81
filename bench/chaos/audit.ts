import type { Db } from "../../src/platform/db.js";
import type { ChatResult } from "./client.js";

export interface Figures {
  requested: number;
  succeeded: number;
  refused: number;
  unanswered: number;
  usageRows: number;
  /** Succeeded chats without a usage row, plus usage rows never in a sent report. */
  lost: number;
  lostNoRow: number;
  lostUnreported: number;
  /** Extra usage rows for one chat (or one request id), plus any Stripe excess over the ledger. */
  doubleBilled: number;
  /** Usage rows for no request id the client was ever given (billed, never seen by the client). */
  unclaimedRows: number;
  llmCalls: number;
  /** LLM calls beyond one per usage row: paid twice because a worker died mid-call, or similar. */
  llmRepeated: number;
  reports: number;
  stripeTotal: number;
  /** Tokens the ledger puts on invoices: billable tokens less those credits paid. */
  ledgerTotal: number;
  /** Micros credits paid, as the usage rows record them. */
  creditsPaid: number;
  /**
   * How many of the credit ledger's own accounts disagree with the rows' credits (consumption
   * entries, what the grants lost, the consumptions' covered amounts), plus consumptions whose
   * request has no usage row and rows whose credits exceed their charge.
   */
  creditsMismatch: number;
}

/** Polls until every usage row is in a report and every report is sent, or the deadline passes. */
export async function waitForDrain(db: Db, timeoutMs: number, log: (msg: string) => void): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  let lastLog = 0;
  for (;;) {
    const open = await openWork(db).catch(() => undefined);
    if (open && open.unreported === 0 && open.unsent === 0) return true;
    if (Date.now() > deadline) return false;
    if (open && Date.now() - lastLog > 10_000) {
      lastLog = Date.now();
      log(`drain: ${open.unreported} usage rows not yet in a report, ${open.unsent} reports not yet sent`);
    }
    await new Promise((r) => setTimeout(r, 500));
  }
}

async function openWork(db: Db): Promise<{ unreported: number; unsent: number }> {
  const [rows, reports] = await Promise.all([
    db("usage_events").whereNull("report_id").count({ n: "*" }).first(),
    db("usage_reports").whereNot({ status: "sent" }).count({ n: "*" }).first(),
  ]);
  return { unreported: Number(rows?.n ?? 0), unsent: Number(reports?.n ?? 0) };
}

/** Compares what the client was promised, what the ledger holds and what Stripe counts. */
export async function audit(
  db: Db,
  results: ChatResult[],
  stripe: { totalFor(customer: string, eventName?: string): number },
  stripeCustomerIds: string[],
  llmCalls: number,
): Promise<Figures> {
  const rows: Array<{
    request_id: string;
    billable_tokens: string;
    credit_tokens: string;
    credit_micros: string;
    charge_micros: string;
    report_status: string | null;
  }> = await db("usage_events as u")
    .leftJoin("usage_reports as r", "r.id", "u.report_id")
    .select(
      "u.request_id",
      "u.billable_tokens",
      "u.credit_tokens",
      "u.credit_micros",
      "u.charge_micros",
      "r.status as report_status",
    );
  const rowsByRequest = new Map<string, number>();
  for (const r of rows) rowsByRequest.set(r.request_id, (rowsByRequest.get(r.request_id) ?? 0) + 1);

  const succeeded = results.filter((r) => r.outcome === "succeeded");
  const lostNoRow = succeeded.filter((r) => ![...r.requestIds].some((id) => rowsByRequest.has(id))).length;
  const lostUnreported = rows.filter((r) => r.report_status !== "sent").length;
  const perChatExtra = results.reduce((sum, r) => {
    const n = [...r.requestIds].reduce((k, id) => k + (rowsByRequest.get(id) ?? 0), 0);
    return sum + Math.max(0, n - 1);
  }, 0);
  const perRequestExtra = [...rowsByRequest.values()].reduce((sum, n) => sum + Math.max(0, n - 1), 0);
  const known = new Set(results.flatMap((r) => [...r.requestIds]));
  const unclaimedRows = rows.filter((r) => !known.has(r.request_id)).length;

  const ledgerTotal = rows.reduce((sum, r) => sum + Number(r.billable_tokens) - Number(r.credit_tokens), 0);
  const creditsPaid = rows.reduce((sum, r) => sum + Number(r.credit_micros), 0);
  const one = async (sql: string) => Number((await db.raw<{ rows: Array<{ n: string }> }>(sql)).rows[0]!.n);
  const creditAccounts = [
    await one(`SELECT coalesce(-sum(amount_micros), 0) AS n FROM credit_entries WHERE kind = 'consumption'`),
    await one(`SELECT coalesce(sum(amount_micros - remaining_micros), 0) AS n FROM credit_grants`),
    await one(`SELECT coalesce(sum(covered_micros), 0) AS n FROM credit_consumptions`),
  ];
  const creditsMismatch =
    creditAccounts.filter((n) => n !== creditsPaid).length +
    (await one(`SELECT count(*) AS n FROM credit_consumptions c
                WHERE NOT EXISTS (SELECT 1 FROM usage_requests u WHERE u.request_id = c.request_id)`)) +
    rows.filter((r) => Number(r.credit_micros) > Number(r.charge_micros)).length;
  const stripeTotal = stripeCustomerIds.reduce((sum, id) => sum + stripe.totalFor(id), 0);
  const reports = Number((await db("usage_reports").count({ n: "*" }).first())?.n ?? 0);
  return {
    requested: results.length,
    succeeded: succeeded.length,
    refused: results.filter((r) => r.outcome === "refused").length,
    unanswered: results.filter((r) => r.outcome === "unanswered").length,
    usageRows: rows.length,
    lost: lostNoRow + lostUnreported,
    lostNoRow,
    lostUnreported,
    doubleBilled: Math.max(perChatExtra, perRequestExtra) + (stripeTotal > ledgerTotal ? 1 : 0),
    unclaimedRows,
    llmCalls,
    llmRepeated: Math.max(0, llmCalls - rows.length),
    reports,
    stripeTotal,
    ledgerTotal,
    creditsPaid,
    creditsMismatch,
  };
}

/** The run's figures as the lines `npm run chaos` prints. */
export function formatFigures(f: Figures): string {
  const line = (label: string, value: string | number) => `  ${label.padEnd(27)}${value}`;
  return [
    line("requested", f.requested),
    line(
      "succeeded",
      `${f.succeeded}${f.refused + f.unanswered > 0 ? ` (refused ${f.refused}, unanswered ${f.unanswered})` : ""}`,
    ),
    line("usage rows", f.usageRows),
    line(
      "lost",
      `${f.lost} (succeeded without a row ${f.lostNoRow}, rows never reported ${f.lostUnreported})`,
    ),
    line("double-billed", f.doubleBilled),
    line("rows the client never saw", f.unclaimedRows),
    line("LLM calls repeated", `${f.llmRepeated} of ${f.llmCalls} calls`),
    line("usage reports", f.reports),
    line("Stripe total", `${f.stripeTotal} tokens`),
    line(
      "ledger total",
      `${f.ledgerTotal} tokens${f.stripeTotal === f.ledgerTotal ? " (equal)" : " (DIFFERENT)"}`,
    ),
    line(
      "credits paid",
      `${f.creditsPaid} micros${f.creditsMismatch === 0 ? " (the credit ledger agrees)" : ` (${f.creditsMismatch} MISMATCHES)`}`,
    ),
  ].join("\n");
}
