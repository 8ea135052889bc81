import type { Db } from "../../platform/db.js";
import type { Logger } from "../../platform/logger.js";
import type { CreditCounter } from "./counter.js";

type Deps = {
  db: Db;
  logger: Logger;
  creditCounter: Pick<CreditCounter, "staleHolds" | "settle" | "release">;
};

/**
 * Gives back credit reservations that no job will settle, so a prepaid customer is never refused
 * for credits that are only held by requests long gone: a web process that died between reserving
 * and enqueuing, a job removed by an operator, a settle that failed after the row was written.
 * A reservation older than `olderThan` whose usage row exists is settled to what the row's credits
 * paid (what the job would have done); one whose job still exists is left alone (a long queue);
 * any other is released. Settling and releasing are idempotent, so a job settling at the same
 * moment is harmless. `jobExists` is the queue's answer (this module does not know BullMQ).
 */
export async function sweepCreditHolds(
  deps: Deps,
  { olderThan, jobExists }: { olderThan: Date; jobExists(requestId: string): Promise<boolean> },
): Promise<{ settled: number; released: number; kept: number }> {
  const stale = await deps.creditCounter.staleHolds(olderThan);
  const result = { settled: 0, released: 0, kept: 0 };
  if (stale.length === 0) return result;
  const rows: Array<{ request_id: string; credit_micros: number }> = await deps
    .db("usage_events")
    .whereIn(
      "request_id",
      stale.map((h) => h.requestId),
    )
    .select("request_id", "credit_micros");
  const paid = new Map(rows.map((r) => [r.request_id, r.credit_micros]));
  for (const hold of stale) {
    const credits = paid.get(hold.requestId);
    if (credits !== undefined) {
      if (await deps.creditCounter.settle(hold.customerId, hold.requestId, credits)) result.settled++;
    } else if (await jobExists(hold.requestId)) {
      result.kept++;
    } else if (await deps.creditCounter.release(hold.customerId, hold.requestId)) {
      result.released++;
    }
  }
  if (result.settled + result.released > 0)
    deps.logger.warn(result, "credit reservations no job would settle were settled or released");
  return result;
}
