import { randomUUID } from "node:crypto";
import type { RequestHandler } from "express";
import type { Logger } from "../../platform/logger.js";
import type { Metrics } from "../../platform/metrics.js";

const UPSTREAM_ID = /^[\x21-\x7e]{1,200}$/;

/**
 * One log line and one duration sample per HTTP request. Every response carries a
 * `meterline-request-id`; the chat route replaces it with the chat's request id, which is also the
 * job id and the `requestId` in the worker's logs. Logged: method, route, status, duration,
 * customer id — never headers, bodies or query strings (API keys and message contents stay out).
 */
export function requestLog(deps: { logger: Logger; metrics: Pick<Metrics, "httpDuration"> }): RequestHandler {
  return (req, res, next) => {
    const started = process.hrtime.bigint();
    res.setHeader("meterline-request-id", `req_${randomUUID().replaceAll("-", "")}`);
    const upstream = req.header("x-request-id");
    res.once("close", () => {
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      // The matched route's pattern, never the raw path: ids in paths would explode label cardinality.
      const route = req.route ? `${req.baseUrl}${String(req.route.path)}` : "unmatched";
      const status = res.statusCode;
      deps.metrics.httpDuration.observe({ method: req.method, route, status: String(status) }, seconds);
      const level = status >= 500 ? "error" : route === "/healthz" || route === "/readyz" ? "debug" : "info";
      deps.logger[level](
        {
          requestId: res.getHeader("meterline-request-id"),
          ...(upstream && UPSTREAM_ID.test(upstream) ? { upstreamRequestId: upstream } : {}),
          method: req.method,
          route,
          status,
          ms: Math.round(seconds * 1000),
          ...(res.writableFinished ? {} : { aborted: true }),
          ...(req.customer ? { customerId: req.customer.customerId } : {}),
        },
        "request",
      );
    });
    next();
  };
}
