import type { Knex } from "knex";
import type { Db } from "../platform/db.js";
import type { ChatCompletion } from "../llm/client.js";
import type { ChatError } from "../queues/queues.js";

/**
 * Postgres is the truth for a chat's idempotency: the claim of an Idempotency-Key and the outcome of
 * keyed and async chats live in `chat_requests` for at least their promised time, so a repeated key
 * or a poll is answered from here whenever Redis no longer has the job (retention, eviction, a
 * failover, FLUSHALL). A succeeded outcome commits with its usage row and is never replaced.
 */

export type StoredChatStatus = "pending" | "succeeded" | "failed";

export interface StoredChat {
  requestId: string;
  customerId: string;
  bodyHash: string | null;
  status: StoredChatStatus;
  response: ChatCompletion | null;
  error: ChatError | null;
  /** A failure a repeat of the key may run again: retries ran out on transient provider errors. */
  retryable: boolean;
}

/** What a chat came to, written by the worker; `keepS` is how long it is promised. */
export type ChatOutcome = {
  requestId: string;
  customerId: string;
  keepS: number;
} & (
  | { status: "succeeded"; response: ChatCompletion }
  | { status: "failed"; error: ChatError; retryable: boolean }
);

function fromRow(row: Record<string, unknown>): StoredChat {
  return {
    requestId: row.request_id as string,
    customerId: row.customer_id as string,
    bodyHash: (row.body_hash as string | null) ?? null,
    status: row.status as StoredChatStatus,
    response: (row.response as ChatCompletion | null) ?? null,
    error: (row.error as ChatError | null) ?? null,
    retryable: row.retryable as boolean,
  };
}

/**
 * Claims (customer, Idempotency-Key) for `requestId`, or returns the request that already holds the
 * key (`fresh: false`). Concurrent claims of one key agree: the unique index makes the later ones
 * wait for the first and then read it.
 */
export async function claimIdempotencyKey(
  db: Db,
  claim: { requestId: string; customerId: string; keyHash: string; bodyHash: string; keepS: number },
): Promise<{ fresh: boolean; chat: StoredChat }> {
  for (let attempt = 0; attempt < 3; attempt++) {
    const inserted = await db("chat_requests")
      .insert({
        request_id: claim.requestId,
        customer_id: claim.customerId,
        key_hash: claim.keyHash,
        body_hash: claim.bodyHash,
        expires_at: db.raw("now() + make_interval(secs => ?)", [claim.keepS]),
      })
      .onConflict(["customer_id", "key_hash"])
      .ignore()
      .returning("*");
    if (inserted[0]) return { fresh: true, chat: fromRow(inserted[0]) };
    // A separate statement: the INSERT's snapshot predates the claim it waited for.
    const row = await db("chat_requests")
      .where({ customer_id: claim.customerId, key_hash: claim.keyHash })
      .first();
    if (row) return { fresh: false, chat: fromRow(row) };
    // Purged between the two statements: claim again.
  }
  throw new Error(`could not claim an Idempotency-Key for customer ${claim.customerId}`);
}

export async function getStoredChat(db: Db, requestId: string): Promise<StoredChat | undefined> {
  const row = await db("chat_requests").where({ request_id: requestId }).first();
  return row ? fromRow(row) : undefined;
}

/**
 * Writes outcomes; takes `trx` because a succeeded outcome must commit with its usage row, or a
 * crash between the two would answer a repeat without a bill or bill without an answer. A
 * succeeded row is final: a late failure or a second answer never replaces it.
 */
export async function storeChatOutcomes(
  db: Db | Knex.Transaction,
  outcomes: readonly ChatOutcome[],
): Promise<void> {
  // One statement may not update a row twice: the first outcome per request wins.
  const unique = [...new Map(outcomes.toReversed().map((o) => [o.requestId, o])).values()];
  if (unique.length === 0) return;
  await db("chat_requests")
    .insert(
      unique.map((o) => ({
        request_id: o.requestId,
        customer_id: o.customerId,
        status: o.status,
        response: o.status === "succeeded" ? JSON.stringify(o.response) : null,
        error: o.status === "failed" ? JSON.stringify(o.error) : null,
        retryable: o.status === "failed" && o.retryable,
        expires_at: db.raw("now() + make_interval(secs => ?)", [o.keepS]),
      })),
    )
    .onConflict("request_id")
    .merge(["status", "response", "error", "retryable", "updated_at"])
    .where("chat_requests.status", "<>", "succeeded");
}

/** Puts a retryable failure back to pending for a rerun; true for the one caller that did it. */
export async function reopenChat(db: Db, requestId: string): Promise<boolean> {
  const updated = await db("chat_requests")
    .where({ request_id: requestId, status: "failed", retryable: true })
    .update({ status: "pending", error: null, retryable: false, updated_at: db.fn.now() });
  return updated > 0;
}

/** Deletes expired claims and outcomes in batches, so no single statement holds many locks. */
export async function purgeExpiredChats(db: Db, batch = 1_000): Promise<number> {
  let purged = 0;
  for (;;) {
    const deleted = await db.raw<{ rowCount: number }>(
      `DELETE FROM chat_requests WHERE request_id IN (
         SELECT request_id FROM chat_requests WHERE expires_at < now() LIMIT ? FOR UPDATE SKIP LOCKED)`,
      [batch],
    );
    purged += deleted.rowCount;
    if (deleted.rowCount < batch) return purged;
  }
}
