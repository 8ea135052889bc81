/** A chat body with one user message (and any extra fields: max_tokens, stream, metadata…). */
export const ask = (content = "hi", extra: Record<string, unknown> = {}) => ({
  model: "gpt-4o-mini",
  messages: [{ role: "user" as const, content }],
  ...extra,
});

export interface ChatRequestOptions {
  /** Extra headers: `idempotency-key`, `prefer: respond-async`, a content type… */
  headers?: Record<string, string>;
  /** Another web process's base URL; the stack's own by default. */
  url?: string;
  signal?: AbortSignal;
}

/** What a chat answered, read whole: JSON parsed, a stream split into its `data:` chunks. */
export interface ChatAnswer {
  status: number;
  headers: Headers;
  requestId: string | null;
  text: string;
  /** The JSON body (a completion, a 202's status or an error); `{}` for a stream. */
  body: ChatBody;
  /** A stream's chunks in order, `[DONE]` left out; empty for a JSON answer. */
  chunks: ChatChunk[];
  /** The assistant's text: the completion's message, or a stream's deltas joined. */
  content: string;
}

export interface ChatBody {
  id?: string;
  object?: string;
  status?: string;
  choices?: Array<{ message?: { content: string | null }; finish_reason?: string | null }>;
  usage?: { prompt_tokens: number; completion_tokens: number; total_tokens: number };
  error?: { message: string; type: string; code: string | null; param?: string | null };
  [field: string]: unknown;
}

export interface ChatChunk {
  id?: string;
  object?: string;
  choices?: Array<{ delta?: { content?: string | null }; finish_reason?: string | null }>;
  usage?: ChatBody["usage"] | null;
  error?: ChatBody["error"];
}

/**
 * POST /v1/chat/completions as a client sends it: Bearer `key` (none when null), a JSON body (an
 * object is encoded, a string is sent as it is, for malformed bodies). The response is unread,
 * for tests that read a stream as it arrives or hang up on it.
 */
export function postChat(
  baseUrl: string,
  key: string | null,
  body: object | string = ask(),
  { headers = {}, url = baseUrl, signal }: ChatRequestOptions = {},
): Promise<Response> {
  return fetch(`${url}/v1/chat/completions`, {
    method: "POST",
    headers: {
      ...(key === null ? {} : { authorization: `Bearer ${key}` }),
      "content-type": "application/json",
      ...headers,
    },
    body: typeof body === "string" ? body : JSON.stringify(body),
    signal,
  });
}

/** Like postChat, and reads the whole answer. */
export async function chat(
  baseUrl: string,
  key: string | null,
  body?: object | string,
  opts?: ChatRequestOptions,
): Promise<ChatAnswer> {
  return readChat(await postChat(baseUrl, key, body, opts));
}

export async function readChat(res: Response): Promise<ChatAnswer> {
  const text = await res.text();
  const streamed = res.headers.get("content-type")?.startsWith("text/event-stream") ?? false;
  const chunks: ChatChunk[] = streamed
    ? text
        .split("\n")
        .filter((line) => line.startsWith("data: {"))
        .map((line) => JSON.parse(line.slice("data: ".length)) as ChatChunk)
    : [];
  const body = streamed || text === "" ? {} : (JSON.parse(text) as ChatBody);
  const content = streamed
    ? chunks.map((c) => c.choices?.[0]?.delta?.content ?? "").join("")
    : (body.choices?.[0]?.message?.content ?? "");
  return {
    status: res.status,
    headers: res.headers,
    requestId: res.headers.get("meterline-request-id"),
    text,
    body,
    chunks,
    content,
  };
}
