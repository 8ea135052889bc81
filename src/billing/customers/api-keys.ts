import { randomBytes } from "node:crypto";
import type { Db } from "../../platform/db.js";
import { sha256 } from "../../platform/ids.js";

const ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/**
 * A new secret key, shown once: `ml_` + 40 base62 characters (≈ 238 bits). Keys are stored only as
 * SHA-256 hashes (`sha256(key)`), so a leaked table does not leak keys.
 */
export function generateApiKey(): { key: string; prefix: string; hash: string } {
  const bytes = randomBytes(40);
  let body = "";
  for (const byte of bytes) body += ALPHABET[byte % 62];
  const key = `ml_${body}`;
  return { key, prefix: key.slice(0, 11), hash: sha256(key) };
}

/** What an operator may see of a key: never its secret nor its hash. */
export interface ApiKeyInfo {
  id: number;
  prefix: string;
  customerId: string;
  createdAt: Date;
  lastUsedAt: Date | null;
  revokedAt: Date | null;
}

/** Keys, newest first, of one customer or of all; `id` picks one key. */
export async function listApiKeys(
  db: Db,
  filter: { customerId?: string; id?: number } = {},
): Promise<ApiKeyInfo[]> {
  const query = db("api_keys")
    .orderBy("id", "desc")
    .select(
      "id",
      "prefix",
      "customer_id as customerId",
      "created_at as createdAt",
      "last_used_at as lastUsedAt",
      "revoked_at as revokedAt",
    );
  if (filter.customerId !== undefined) query.where({ customer_id: filter.customerId });
  if (filter.id !== undefined) query.where({ id: filter.id });
  return query;
}
