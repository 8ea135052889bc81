import type { IncomingMessage, ServerResponse } from "node:http";

const MAX_BODY_BYTES = 8 * 1024 * 1024;

function errorDefaults(status: number): [message: string, type: string, code: string | null] {
  if (status === 429) return ["Rate limit reached for requests", "rate_limit_error", "rate_limit_exceeded"];
  if (status >= 500) return ["The server had an error while processing your request.", "server_error", null];
  if (status === 401) return ["Incorrect API key provided", "invalid_request_error", "invalid_api_key"];
  return ["Invalid request", "invalid_request_error", null];
}

export function sendJson(res: ServerResponse, status: number, body: unknown, headers: object = {}): void {
  const s = JSON.stringify(body);
  res.writeHead(status, {
    "content-type": "application/json",
    "content-length": Buffer.byteLength(s),
    ...headers,
  });
  res.end(s);
}

export type ErrorInfo = { message?: string; type?: string; code?: string | null; param?: string };
export function sendError(res: ServerResponse, status: number, e: ErrorInfo): void {
  const [message, type, code] = errorDefaults(status);
  const error = {
    message: e.message ?? message,
    type: e.type ?? type,
    param: e.param ?? null,
    code: e.code ?? code,
  };
  // retry-after-ms: 0 lets SDK clients with maxRetries > 0 retry immediately instead of backing off.
  sendJson(res, status, { error }, status === 429 ? { "retry-after-ms": "0" } : {});
}

/** An error the emulator answers in OpenAI's shape, with this status. */
export class OpenAIApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export async function readJson(req: IncomingMessage): Promise<unknown> {
  const parts: Buffer[] = [];
  let size = 0;
  for await (const part of req as AsyncIterable<Buffer>) {
    size += part.length;
    if (size > MAX_BODY_BYTES) throw new OpenAIApiError(413, "Request body too large");
    parts.push(part);
  }
  if (size === 0) return undefined;
  try {
    return JSON.parse(Buffer.concat(parts).toString("utf8"));
  } catch {
    throw new OpenAIApiError(400, "We could not parse the JSON body of your request.");
  }
}
