import { createHmac, timingSafeEqual } from "node:crypto";

/** The header every delivery carries; modelled on Stripe's `Stripe-Signature`. */
export const SIGNATURE_HEADER = "Meterline-Signature";

/**
 * `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`, signed with the endpoint's secret. The
 * timestamp is inside the signed text, so a receiver that bounds its age refuses a replayed request.
 */
export function signPayload(secret: string, timestamp: number, body: string): string {
  return `t=${timestamp},v1=${hmac(secret, timestamp, body)}`;
}

/**
 * What a receiver runs on the raw body (before any JSON parsing): true when one `v1` signature
 * matches and the timestamp is within `toleranceS` of now. Self-contained on purpose (node:crypto
 * only), so a receiver can copy it.
 */
export function verifySignature(
  header: string | undefined,
  body: string,
  secret: string,
  toleranceS = 300,
  nowS = Math.floor(Date.now() / 1000),
): boolean {
  if (!header) return false;
  const parts = header.split(",").map((part) => part.trim().split("="));
  const t = Number(parts.find(([k]) => k === "t")?.[1]);
  if (!Number.isInteger(t) || Math.abs(nowS - t) > toleranceS) return false;
  const expected = Buffer.from(hmac(secret, t, body), "hex");
  return parts
    .filter(([k, v]) => k === "v1" && v !== undefined && /^[0-9a-f]{64}$/.test(v))
    .some(([, v]) => timingSafeEqual(Buffer.from(v!, "hex"), expected));
}

function hmac(secret: string, timestamp: number, body: string): string {
  return createHmac("sha256", secret).update(`${timestamp}.${body}`).digest("hex");
}
