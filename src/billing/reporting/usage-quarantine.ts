import type { Knex } from "knex";
import { QUEUE, reportJobId } from "../../queues/queues.js";
import { recordUnrunDeadLetters } from "../../queues/dead-letters.js";
import { markRows, reportRow, writeReports, type PlannedReport } from "./planned-reports.js";

/** Why the flush set a customer's rows aside; a fixed set, as it labels a metric. */
export type QuarantineReason = "value_over_limit" | "report_insert_failed";

export interface Quarantined {
  reportId: number;
  customerId: string;
  reason: QuarantineReason;
  value: string;
  rows: number;
  message: string;
}

/**
 * Sets one customer's unreportable windows aside inside the flush's transaction: each becomes a
 * `failed` report (value 0, the true sum in its error) that holds its rows, with a `stripe-report`
 * dead letter an operator sees beside every other. Its rows leave the unreported set, so they no
 * longer fill every flush batch; the reporter refuses the report while `quarantine_reason` is set.
 */
export async function quarantineReports(
  trx: Knex.Transaction,
  planned: readonly PlannedReport[],
  reason: QuarantineReason,
  cause: string,
): Promise<Quarantined[]> {
  const out = planned.map((p) => ({
    reportId: p.id,
    customerId: p.customerId,
    reason,
    value: p.value,
    rows: p.rowIds.length,
    message:
      `quarantined (${reason}): ${p.rowIds.length} usage rows summing to ${p.value} ${p.eventName} ` +
      `were not reported: ${cause}. Fix the rows, set their report_id to NULL and flush again`,
  }));
  await trx("usage_reports").insert(
    planned.map((p, i) =>
      reportRow(p, {
        value: 0,
        status: "failed",
        last_error: out[i]!.message,
        quarantine_reason: reason,
        // Never sent: its dead letter redrives it as a report of its own.
        batch_id: null,
      }),
    ),
  );
  await recordUnrunDeadLetters(
    trx,
    planned.map((p, i) => ({
      queue: QUEUE.stripeReport,
      jobId: reportJobId(p.id),
      name: "report",
      data: { reportId: p.id },
      reason: out[i]!.message,
    })),
  );
  await markRows(trx, planned);
  return out;
}

/** A customer's rows that could not even be quarantined: they stay unreported, claimed again later. */
export interface Stuck {
  customerId: string;
  rows: number;
  error: unknown;
}

/**
 * Writes the planned reports, keeping each customer's failure to itself: a window whose sum is
 * above `maxValue` is quarantined; the rest are written in one savepoint and, should that fail on
 * their data, again one customer per savepoint, quarantining a customer whose reports still fail.
 * Any other error (a lost connection, a timeout) is not the data's fault: it fails the flush,
 * which the next tick retries.
 */
export async function writeIsolated(
  trx: Knex.Transaction,
  planned: readonly PlannedReport[],
  maxValue: number,
): Promise<{ written: PlannedReport[]; quarantined: Quarantined[]; stuck: Stuck[] }> {
  const over = planned.filter((p) => BigInt(p.value) > BigInt(maxValue));
  const fit = planned.filter((p) => !over.includes(p));
  const written: PlannedReport[] = [];
  const failed: PlannedReport[][] = [];
  if (await tryWrite(trx, fit)) written.push(...fit);
  else
    for (const group of byCustomer(fit)) {
      if (await tryWrite(trx, group)) written.push(...group);
      else failed.push(group);
    }
  const quarantined: Quarantined[] = [];
  const stuck: Stuck[] = [];
  const setAside = async (group: PlannedReport[], reason: QuarantineReason, cause: string) => {
    try {
      quarantined.push(...(await trx.transaction((sp) => quarantineReports(sp, group, reason, cause))));
    } catch (error) {
      if (!isDataError(error)) throw error;
      stuck.push({ customerId: group[0]!.customerId, rows: countRows(group), error });
    }
  };
  for (const group of byCustomer(over))
    await setAside(group, "value_over_limit", `the sum is above the largest reportable value ${maxValue}`);
  for (const group of failed) await setAside(group, "report_insert_failed", "writing the report failed");
  return { written, quarantined, stuck };
}

async function tryWrite(trx: Knex.Transaction, planned: PlannedReport[]): Promise<boolean> {
  try {
    await trx.transaction((sp) => writeReports(sp, planned));
    return true;
  } catch (error) {
    if (!isDataError(error)) throw error;
    return false;
  }
}

// SQLSTATE classes 22 (data exception) and 23 (integrity constraint violation): the rows' fault.
function isDataError(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "string" && (code.startsWith("22") || code.startsWith("23"));
}

function byCustomer(planned: readonly PlannedReport[]): PlannedReport[][] {
  const groups = new Map<string, PlannedReport[]>();
  for (const p of planned) {
    const group = groups.get(p.customerId);
    if (group) group.push(p);
    else groups.set(p.customerId, [p]);
  }
  return [...groups.values()];
}

const countRows = (planned: readonly PlannedReport[]) => planned.reduce((n, p) => n + p.rowIds.length, 0);
