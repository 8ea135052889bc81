import type { ServerResponse } from "node:http";
import { sendJson } from "../openai-emulator/http.js";

const ERROR_TYPES: Record<number, string> = {
  400: "invalid_request_error",
  401: "authentication_error",
  402: "billing_error",
  403: "permission_error",
  404: "not_found_error",
  408: "timeout_error",
  409: "conflict_error",
  413: "request_too_large",
  429: "rate_limit_error",
  529: "overloaded_error",
};

const DEFAULT_MESSAGES: Record<string, string> = {
  rate_limit_error: "Number of request tokens has exceeded your per-minute rate limit",
  overloaded_error: "Overloaded",
  api_error: "Internal server error",
  authentication_error: "invalid x-api-key",
};

/** An error in Anthropic's shape: {"type":"error","error":{"type","message"},"request_id"}. */
export function sendAnthropicError(
  res: ServerResponse,
  status: number,
  e: { message?: string; type?: string },
  requestId: string,
): void {
  const type = e.type ?? ERROR_TYPES[status] ?? (status >= 500 ? "api_error" : "invalid_request_error");
  const message = e.message ?? DEFAULT_MESSAGES[type] ?? "Invalid request";
  const headers = { "request-id": requestId, ...(status === 429 ? { "retry-after": "0" } : {}) };
  sendJson(res, status, { type: "error", error: { type, message }, request_id: requestId }, headers);
}
