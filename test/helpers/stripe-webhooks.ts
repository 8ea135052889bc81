import type { BuiltEvent } from "../../src/local/stripe-emulator.js";
import type { Db } from "../../src/platform/db.js";
import { waitFor } from "./wait.js";

/** The secret the stack verifies; useStack's Stripe emulator signs with it. */
export const WEBHOOK_SECRET = "whsec_meterline_emulator";

/** Posts a built (signed) event as Stripe does; returns the status and JSON body. */
export async function deliver(
  stackUrl: string,
  built: Pick<BuiltEvent, "payload" | "header">,
): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${stackUrl}/webhooks/stripe`, {
    method: "POST",
    headers: { "content-type": "application/json; charset=utf-8", "stripe-signature": built.header },
    body: built.payload,
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

/** Waits until every listed event has left `received` (processed, ignored or dead). */
export async function waitForEvents(
  db: Db,
  ids: string[],
  { timeoutMs = 20_000, intervalMs = 50 } = {},
): Promise<void> {
  await waitFor(
    async () => {
      const row = await db("stripe_events")
        .whereIn("id", ids)
        .whereNot("status", "received")
        .count({ n: "*" });
      return Number(row[0]?.n) === ids.length;
    },
    { timeoutMs, intervalMs, what: `${ids.length} stripe events to be processed` },
  );
}

/** Runs `fn` over `items` with at most `limit` in flight. */
export async function inParallel<T, R>(items: T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        results[i] = await fn(items[i]!);
      }
    }),
  );
  return results;
}
