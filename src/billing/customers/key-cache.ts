import { sha256 } from "../../platform/ids.js";
import type { AuthenticatedCustomer } from "./customers.js";

type Lookup = (key: string) => Promise<AuthenticatedCustomer | undefined>;

/**
 * How long a web process may go on accepting a key after it was revoked (or its customer suspended,
 * canceled or moved to another plan): each process caches a successful lookup this long.
 */
export const KEY_CACHE_TTL_MS = 2_000;

/**
 * Remembers successful API-key lookups for `ttlMs`, so a busy client costs one Postgres query per
 * key per TTL instead of one per request; concurrent misses for one key share one query. What must
 * stay true: a revoked key, a suspended or canceled customer or a plan change takes effect within
 * `ttlMs` on every web process (an entry expires `ttlMs` after its lookup started, never later).
 * Unknown keys are never cached.
 */
export function createKeyCache(
  lookup: Lookup,
  { ttlMs = KEY_CACHE_TTL_MS, maxEntries = 10_000 } = {},
): Lookup {
  const entries = new Map<string, { expires: number; value: Promise<AuthenticatedCustomer | undefined> }>();
  return (key) => {
    const id = sha256(key);
    const now = Date.now();
    const hit = entries.get(id);
    if (hit && hit.expires > now) return hit.value;
    if (entries.size >= maxEntries) entries.delete(entries.keys().next().value as string);
    const value = lookup(key);
    entries.set(id, { expires: now + ttlMs, value });
    value.then(
      (customer) => customer === undefined && entries.delete(id),
      () => entries.delete(id),
    );
    return value;
  };
}
