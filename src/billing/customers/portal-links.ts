import { createHmac, timingSafeEqual } from "node:crypto";
import type { Config } from "../../config.js";

/** How long a portal link opens the portal: one hour. */
export const PORTAL_LINK_TTL_MS = 60 * 60_000;

/** What a signed portal link carries in its query string. */
export interface PortalLink {
  customerId: string;
  expiresAt: Date;
  signature: string;
}

/**
 * The key portal links are signed with: PORTAL_SECRET, else one derived from ADMIN_TOKEN (so
 * rotating the admin token also revokes every link). Undefined when neither is set: no portal.
 */
export function portalSecret(config: Pick<Config, "portal" | "adminToken">): string | undefined {
  if (config.portal.secret) return config.portal.secret;
  if (!config.adminToken) return undefined;
  return createHmac("sha256", config.adminToken).update("meterline portal links").digest("base64url");
}

const sign = (secret: string, customerId: string, expiresSeconds: number) =>
  createHmac("sha256", secret).update(`portal.${customerId}.${expiresSeconds}`).digest("base64url");

/** A read-only link for one customer, valid `ttlMs` from `now`. */
export function signPortalLink(
  secret: string,
  customerId: string,
  now = new Date(),
  ttlMs = PORTAL_LINK_TTL_MS,
): PortalLink {
  const expiresSeconds = Math.floor((now.getTime() + ttlMs) / 1000);
  return {
    customerId,
    expiresAt: new Date(expiresSeconds * 1000),
    signature: sign(secret, customerId, expiresSeconds),
  };
}

/** The query string of a link: `customer`, `expires` (Unix seconds) and `signature`. */
export function portalQuery(link: PortalLink): string {
  return new URLSearchParams({
    customer: link.customerId,
    expires: String(link.expiresAt.getTime() / 1000),
    signature: link.signature,
  }).toString();
}

/** Why a link opens nothing. */
export type PortalRefusal = "malformed" | "expired" | "bad_signature";

/** The customer a link's query opens, or why it opens nothing. Signature compared in constant time. */
export function verifyPortalLink(
  secret: string,
  query: Record<string, unknown>,
  now = new Date(),
): { customerId: string } | { refused: PortalRefusal } {
  const { customer, expires, signature } = query;
  if (typeof customer !== "string" || typeof expires !== "string" || typeof signature !== "string")
    return { refused: "malformed" };
  if (!/^\d{1,12}$/.test(expires)) return { refused: "malformed" };
  const expected = Buffer.from(sign(secret, customer, Number(expires)));
  const given = Buffer.from(signature);
  if (given.length !== expected.length || !timingSafeEqual(given, expected))
    return { refused: "bad_signature" };
  if (Number(expires) * 1000 <= now.getTime()) return { refused: "expired" };
  return { customerId: customer };
}

/** A portal session as the admin API and the CLI give it: the page's URL, the JSON's, the expiry. */
export function portalSession(baseUrl: string, link: PortalLink) {
  const query = portalQuery(link);
  return {
    object: "portal.session",
    customer: link.customerId,
    url: `${baseUrl}/portal?${query}`,
    data_url: `${baseUrl}/portal/data?${query}`,
    expires_at: link.expiresAt.toISOString(),
  };
}
