import type { ServerResponse } from "node:http";
import { sendJson } from "../openai-emulator/http.js";

const STATUS_NAMES: Record<number, string> = {
  400: "INVALID_ARGUMENT",
  401: "UNAUTHENTICATED",
  403: "PERMISSION_DENIED",
  404: "NOT_FOUND",
  408: "DEADLINE_EXCEEDED",
  409: "ABORTED",
  429: "RESOURCE_EXHAUSTED",
  500: "INTERNAL",
  503: "UNAVAILABLE",
  504: "DEADLINE_EXCEEDED",
};

const DEFAULT_MESSAGES: Record<number, string> = {
  429: "Resource has been exhausted (e.g. check quota).",
  500: "An internal error has occurred. Please retry or report in https://developers.generativeai.google/guide/troubleshooting",
  503: "The model is overloaded. Please try again later.",
};

/** An error the emulator answers in Google's shape: {error: {code, message, status, details?}}. */
export class GeminiApiError extends Error {
  constructor(
    readonly status: number,
    message?: string,
    readonly details?: unknown[],
  ) {
    super(message ?? DEFAULT_MESSAGES[status] ?? "Request contains an invalid argument.");
  }
}

export function sendGoogleError(res: ServerResponse, err: GeminiApiError): void {
  const error = {
    code: err.status,
    message: err.message,
    status: STATUS_NAMES[err.status] ?? "UNKNOWN",
    ...(err.details ? { details: err.details } : {}),
  };
  sendJson(res, err.status, { error });
}

/** Google's answer to a wrong API key: a 400, not a 401, with reason API_KEY_INVALID. */
export const invalidKey = () =>
  new GeminiApiError(400, "API key not valid. Please pass a valid API key.", [
    {
      "@type": "type.googleapis.com/google.rpc.ErrorInfo",
      reason: "API_KEY_INVALID",
      domain: "googleapis.com",
    },
  ]);
