import { timingSafeEqual } from "node:crypto";
import type { Request, RequestHandler } from "express";
import { authenticateKey, type AuthenticatedCustomer } from "../../billing/customers/customers.js";
import { createKeyCache, KEY_CACHE_TTL_MS } from "../../billing/customers/key-cache.js";
import type { Db } from "../../platform/db.js";
import { HttpError, unauthorized } from "../../errors.js";

declare module "express-serve-static-core" {
  interface Request {
    customer?: AuthenticatedCustomer;
  }
}

function bearer(header: string | undefined): string | undefined {
  const match = header?.match(/^Bearer\s+(\S+)\s*$/i);
  return match?.[1];
}

/**
 * Authenticates a customer API key (stored as a SHA-256 hash) and refuses blocked customers.
 * Lookups are cached for `cacheMs`: revocations and status changes apply within that time.
 */
export function customerAuth(db: Db, { cacheMs = KEY_CACHE_TTL_MS } = {}): RequestHandler {
  const lookup = createKeyCache((key) => authenticateKey(db, key), { ttlMs: cacheMs });
  return async (req, _res, next) => {
    const key = bearer(req.headers.authorization);
    if (!key) {
      throw unauthorized(
        "You didn't provide an API key. Send it in the Authorization header: 'Authorization: Bearer YOUR_KEY'.",
        "missing_api_key",
      );
    }
    const customer = await lookup(key);
    if (!customer) throw unauthorized("Incorrect API key provided.");
    if (customer.status === "canceled") {
      throw new HttpError(403, "This account is canceled.", "permission_error", "account_canceled");
    }
    if (customer.status === "suspended") {
      throw new HttpError(
        402,
        "This account is suspended for non-payment. Pay the open invoice to resume.",
        "insufficient_quota",
        "account_suspended",
      );
    }
    req.customer = customer;
    next();
  };
}

/**
 * Whether a request carries the admin token: `Authorization: Bearer <ADMIN_TOKEN>`, or HTTP basic
 * with the token as password. Without a configured token nobody is an admin.
 */
export function isAdminRequest(token: string | undefined): (req: Request) => boolean {
  if (!token) return () => false;
  const expected = Buffer.from(token);
  const matches = (given: string) => {
    const buf = Buffer.from(given);
    return buf.length === expected.length && timingSafeEqual(buf, expected);
  };
  return (req) => {
    const header = req.headers.authorization ?? "";
    const bearerToken = bearer(header);
    if (bearerToken !== undefined && matches(bearerToken)) return true;
    const basic = header.match(/^Basic\s+(\S+)$/i)?.[1];
    if (!basic) return false;
    const decoded = Buffer.from(basic, "base64").toString();
    return matches(decoded.slice(decoded.indexOf(":") + 1));
  };
}

/** Admin routes: only requests with the admin token (isAdminRequest) get through. */
export function adminAuth(token: string): RequestHandler {
  const isAdmin = isAdminRequest(token);
  return (req, res, next) => {
    if (isAdmin(req)) return next();
    res.setHeader("WWW-Authenticate", 'Basic realm="meterline admin"');
    res.status(401).json(unauthorized("Admin token required.", "invalid_admin_token").toBody());
  };
}
