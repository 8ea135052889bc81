import { createHash, randomBytes } from "node:crypto";

const ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/** A new secret key, shown once: `ml_` + 40 base62 characters (≈ 238 bits). */
export function generateApiKey(): { key: string; prefix: string; hash: string } {
  const bytes = randomBytes(40);
  let body = "";
  for (const byte of bytes) body += ALPHABET[byte % 62];
  const key = `ml_${body}`;
  return { key, prefix: key.slice(0, 11), hash: hashApiKey(key) };
}

/** Keys are stored only as SHA-256 hashes; a leaked table does not leak keys. */
export function hashApiKey(key: string): string {
  return createHash("sha256").update(key).digest("hex");
}
