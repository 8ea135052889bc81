import type { ErrorRequestHandler, RequestHandler } from "express";
import { HttpError } from "../../errors.js";
import type { Logger } from "../../platform/logger.js";

/** Unknown routes answer in the same OpenAI-style shape as every other error. */
export const notFoundHandler: RequestHandler = (req, res) => {
  res
    .status(404)
    .json(
      new HttpError(
        404,
        `Unknown route ${req.method} ${req.path}`,
        "not_found_error",
        "unknown_route",
      ).toBody(),
    );
};

// body-parser's error types, translated for API clients.
const PARSER_ERRORS: Record<string, [number, string, string]> = {
  "entity.parse.failed": [400, "The request body is not valid JSON.", "invalid_json"],
  "entity.too.large": [413, "The request body is too large.", "body_too_large"],
  "encoding.unsupported": [415, "Unsupported content encoding.", "unsupported_encoding"],
  "charset.unsupported": [415, "Unsupported charset.", "unsupported_charset"],
  "request.aborted": [400, "The request was aborted.", "request_aborted"],
  "request.size.invalid": [400, "The request size did not match Content-Length.", "invalid_length"],
};

/** The one place where errors become HTTP statuses. */
export function errorHandler(logger: Logger): ErrorRequestHandler {
  return (err, req, res, _next) => {
    let httpError: HttpError;
    if (err instanceof HttpError) {
      httpError = err;
    } else if (err && typeof err === "object" && typeof err.type === "string" && PARSER_ERRORS[err.type]) {
      const [status, message, code] = PARSER_ERRORS[err.type]!;
      httpError = new HttpError(status, message, "invalid_request_error", code);
    } else {
      logger.error({ err, method: req.method, path: req.path }, "unhandled error");
      httpError = new HttpError(500, "Internal server error.", "server_error", "internal_error");
    }
    if (res.headersSent) {
      res.end();
      return;
    }
    if (httpError.status === 503) res.setHeader("Retry-After", "1");
    res.status(httpError.status).json(httpError.toBody());
  };
}
