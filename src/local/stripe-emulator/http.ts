import type { IncomingMessage, ServerResponse } from "node:http";
import { catalogRoutes } from "./catalog.js";
import { checkoutSessionRoutes } from "./checkout-sessions.js";
import type { FaultDecision } from "./faults.js";
import { invoicePreviewRoutes } from "./invoice-preview.js";
import { meterEventRoutes } from "./meter-events.js";
import { meterEventStreamRoutes } from "./meter-event-stream.js";
import { meterRoutes } from "./meters.js";
import { paymentIntentRoutes } from "./payment-intents.js";
import { paymentMethodRoutes } from "./payment-methods.js";
import { priceRoutes } from "./prices.js";
import type { Route } from "./state.js";
import { ApiError, invalid } from "./api-error.js";

// HTTP plumbing: routing table, body reading, replies in Stripe's shapes, auth header parsing.

const MAX_BODY_BYTES = 5 * 1024 * 1024;

export interface Reply {
  status: number;
  body: unknown;
  headers: Record<string, string>;
}

const ROUTES: Route[] = [
  ...meterEventRoutes,
  ...meterEventStreamRoutes,
  ...meterRoutes,
  ...priceRoutes,
  ...catalogRoutes,
  ...checkoutSessionRoutes,
  ...paymentIntentRoutes,
  ...paymentMethodRoutes,
  ...invoicePreviewRoutes,
];
const COMPILED = ROUTES.map((route) => ({ route, segs: route.template.split("/") }));

export function matchRoute(
  method: string,
  path: string,
): { route: Route; pathParams: Record<string, string> } | undefined {
  const segs = path.split("/");
  let fallback: { route: Route; pathParams: Record<string, string> } | undefined;
  for (const c of COMPILED) {
    if (c.segs.length !== segs.length) continue;
    const pathParams: Record<string, string> = {};
    const ok = c.segs.every((s, i) => {
      const actual = segs[i] ?? "";
      if (s.startsWith(":")) {
        if (actual === "") return false;
        pathParams[s.slice(1)] = decodeURIComponent(actual);
        return true;
      }
      return s === actual;
    });
    if (!ok) continue;
    if (c.route.method === method) return { route: c.route, pathParams };
    fallback ??= { route: c.route, pathParams };
  }
  // Same path, other method: counted under the template, answered 404 like Stripe.
  if (!fallback) return undefined;
  const { template } = fallback.route;
  return { route: { method: "GET", template, handler: unrecognized }, pathParams: {} };
}

export function unrecognized(): never {
  throw new ApiError(404, "invalid_request_error", "Unrecognized request URL");
}

export const errorReply = (e: ApiError): Reply => ({
  status: e.status,
  body: e.body(),
  headers: e.extra.headers ?? {},
});

export function injected(d: FaultDecision): ApiError {
  if (d.kind === 429) {
    return new ApiError(
      429,
      "rate_limit_error",
      d.message ??
        "Request rate limit exceeded. Learn more about rate limits here https://stripe.com/docs/rate-limits.",
      { code: "rate_limit", headers: { "stripe-rate-limited-reason": "global-rate" } },
    );
  }
  if (d.kind === 400) return invalid(d.message ?? "Injected failure (emulator failNext).");
  return new ApiError(500, "api_error", d.message ?? "An unknown error occurred");
}

export function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (c: Buffer) => {
      size += c.length;
      if (size > MAX_BODY_BYTES) {
        req.destroy();
        reject(new Error("body too large"));
      } else chunks.push(c);
    });
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    req.on("error", reject);
  });
}

export function send(res: ServerResponse, reply: Reply): void {
  if (res.headersSent || res.destroyed) return;
  const text = JSON.stringify(reply.body);
  res.writeHead(reply.status, {
    "content-type": "application/json",
    "content-length": String(Buffer.byteLength(text)),
    ...reply.headers,
  });
  res.end(text);
}

export function bearerOf(req: IncomingMessage): string | undefined {
  const h = req.headers.authorization ?? "";
  const bearer = /^Bearer\s+(\S+)\s*$/i.exec(h);
  if (bearer) return bearer[1];
  const basic = /^Basic\s+(\S+)\s*$/i.exec(h);
  if (basic)
    return (
      Buffer.from(basic[1] ?? "", "base64")
        .toString("utf8")
        .split(":")[0] || undefined
    );
  return undefined;
}

export const mask = (key: string): string =>
  `${key.slice(0, 8)}${"*".repeat(Math.max(0, key.length - 12))}${key.slice(-4)}`;
