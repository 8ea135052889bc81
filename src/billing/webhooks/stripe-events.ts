import type { Db } from "../../platform/db.js";

export type StripeEventStatus = "received" | "processed" | "ignored" | "dead";

export interface StoredStripeEvent {
  id: string;
  type: string;
  created: number;
  payload: unknown;
  status: StripeEventStatus;
  attempts: number;
}

/**
 * Stores a verified webhook event; false when it was stored before (a re-delivery). One statement:
 * the webhook intake must stay fast. `rawBody` is Stripe's JSON exactly as signed.
 */
export async function storeStripeEvent(
  db: Db,
  event: { id: string; type: string; created: number },
  rawBody: string,
): Promise<boolean> {
  const rows = await db("stripe_events")
    .insert({ id: event.id, type: event.type, created: event.created, payload: rawBody })
    .onConflict("id")
    .ignore()
    .returning("id");
  return rows.length > 0;
}

/**
 * Takes an event for processing and counts the attempt; undefined when it is unknown or already
 * processed or ignored, so a duplicate job is a no-op.
 */
export async function claimStripeEvent(db: Db, id: string): Promise<StoredStripeEvent | undefined> {
  const [row] = await db("stripe_events")
    .where({ id })
    .whereIn("status", ["received", "dead"])
    .update({ attempts: db.raw("attempts + 1") })
    .returning(["id", "type", "created", "payload", "status", "attempts"]);
  return row;
}

/** Records the outcome of one attempt; `received` with an error means it will be retried. */
export async function finishStripeEvent(
  db: Db,
  id: string,
  status: StripeEventStatus,
  error: string | null = null,
): Promise<void> {
  const done = status === "processed" || status === "ignored";
  await db("stripe_events")
    .where({ id })
    .update({ status, error, processed_at: done ? db.fn.now() : null });
}

/** Events stored at least `minAgeMs` ago that are still waiting: their job may never have been added. */
export async function listWaitingStripeEvents(db: Db, minAgeMs: number, limit = 1_000): Promise<string[]> {
  const rows: Array<{ id: string }> = await db("stripe_events")
    .where({ status: "received" })
    .where("received_at", "<", db.raw("now() - make_interval(secs => ?)", [minAgeMs / 1000]))
    .orderBy("received_at")
    .limit(limit)
    .select("id");
  return rows.map((r) => r.id);
}
