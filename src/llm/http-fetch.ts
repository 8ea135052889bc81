import http from "node:http";
import https from "node:https";
import { Readable } from "node:stream";
import zlib from "node:zlib";

export type HttpFetchOptions = {
  /** Idle keep-alive connections kept per host; set it to the worker's concurrency so each slot keeps one. */
  maxFreeSockets?: number;
  /** An idle connection is closed after this long (below the provider's own idle timeout). */
  idleTimeoutMs?: number;
};

/**
 * A `fetch` for the openai SDK (its documented `fetch` option) on node:http keep-alive agents.
 *
 * Node's built-in fetch (undici) spends about 3× the CPU per call on WHATWG streams, request
 * objects and abort plumbing; in one worker at hundreds of chats per second that was about a third
 * of the process (bench row d, `--cpu-prof`). JSON answers are read whole and handed over as a small
 * Response-shaped object; event streams get a real `Response` over the socket, so streaming is
 * unchanged. Request bodies the SDK sends as streams or forms (file uploads) go to the platform
 * `fetch`, as do `Request` objects. Redirects are not followed: the OpenAI API does not send them.
 */
export function createHttpFetch(options: HttpFetchOptions = {}): typeof fetch {
  const agentOptions = {
    keepAlive: true,
    maxFreeSockets: options.maxFreeSockets ?? 256,
    timeout: options.idleTimeoutMs ?? 4_000,
    scheduling: "lifo" as const,
  };
  const agents = { http: new http.Agent(agentOptions), https: new https.Agent(agentOptions) };

  return (async (input: string | URL | Request, init: RequestInit = {}): Promise<Response> => {
    const body = init.body;
    if (
      input instanceof Request ||
      !(body == null || typeof body === "string" || body instanceof Uint8Array)
    ) {
      return fetch(input, init);
    }
    const url = typeof input === "string" ? new URL(input) : input;
    const signal = init.signal ?? undefined;
    signal?.throwIfAborted();
    const secure = url.protocol === "https:";
    const send = secure ? https.request : http.request;
    return new Promise<Response>((resolve, reject) => {
      const req = send(url, {
        method: init.method ?? "GET",
        headers: plainHeaders(init.headers),
        agent: secure ? agents.https : agents.http,
      });
      // Until the response is settled an abort (the SDK's timeout, or a worker handing its job back)
      // destroys the request; after that, the streamed body carries the error.
      const onAbort = () => req.destroy(abortError(signal));
      signal?.addEventListener("abort", onAbort, { once: true });
      const settle = (fn: () => void) => {
        signal?.removeEventListener("abort", onAbort);
        fn();
      };
      req.on("error", (err) => settle(() => reject(err)));
      req.on("response", (res) => {
        const status = res.statusCode ?? 0;
        const headers = new Headers();
        for (let i = 0; i < res.rawHeaders.length; i += 2)
          headers.append(res.rawHeaders[i]!, res.rawHeaders[i + 1]!);
        const meta = { status, statusText: res.statusMessage ?? "", headers, url: url.href };
        // A connection cut mid-answer errors the response (Node emits "aborted" as an error).
        res.on("error", (err) => settle(() => reject(err)));
        const decoded = decode(res, headers);
        if (headers.get("content-type")?.startsWith("text/event-stream")) {
          const stream = Readable.toWeb(decoded) as ReadableStream<Uint8Array>;
          signal?.addEventListener("abort", () => res.destroy(abortError(signal)), { once: true });
          settle(() => resolve(new Response(stream, meta)));
          return;
        }
        const chunks: Buffer[] = [];
        decoded.on("data", (chunk: Buffer) => chunks.push(chunk));
        decoded.on("error", (err) => settle(() => reject(err)));
        decoded.on("end", () => settle(() => resolve(bufferedResponse(meta, Buffer.concat(chunks)))));
      });
      req.end(body ?? undefined);
    });
  }) as typeof fetch;
}

function plainHeaders(headers: RequestInit["headers"]): Record<string, string> {
  if (!headers) return {};
  if (headers instanceof Headers) return Object.fromEntries(headers);
  if (Array.isArray(headers)) return Object.fromEntries(headers);
  return headers as Record<string, string>;
}

function decode(res: http.IncomingMessage, headers: Headers): Readable {
  switch (headers.get("content-encoding")) {
    case "gzip":
      return res.pipe(zlib.createGunzip());
    case "deflate":
      return res.pipe(zlib.createInflate());
    case "br":
      return res.pipe(zlib.createBrotliDecompress());
    default:
      return res;
  }
}

function abortError(signal: AbortSignal | undefined): Error {
  return signal?.reason instanceof Error
    ? signal.reason
    : new DOMException("This operation was aborted", "AbortError");
}

type Meta = { status: number; statusText: string; headers: Headers; url: string };

/**
 * The parts of `Response` a client reads from a whole body, without building web streams for it;
 * `body`, `formData()` and `clone()` fall back to a real `Response` for the rare caller that wants them.
 */
class BufferedResponse {
  readonly ok: boolean;
  readonly status: number;
  readonly statusText: string;
  readonly headers: Headers;
  readonly url: string;
  readonly redirected = false;
  readonly type = "basic";
  #buffer: Buffer;
  #used = false;

  constructor(meta: Meta, buffer: Buffer) {
    this.ok = meta.status >= 200 && meta.status < 300;
    this.status = meta.status;
    this.statusText = meta.statusText;
    this.headers = meta.headers;
    this.url = meta.url;
    this.#buffer = buffer;
  }

  get bodyUsed(): boolean {
    return this.#used;
  }

  get body(): ReadableStream<Uint8Array> | null {
    return this.#real().body;
  }

  async text(): Promise<string> {
    return this.#take().toString("utf8");
  }

  async json(): Promise<unknown> {
    return JSON.parse(this.#take().toString("utf8"));
  }

  async arrayBuffer(): Promise<ArrayBuffer> {
    return new Uint8Array(this.#take()).buffer;
  }

  async bytes(): Promise<Uint8Array> {
    return new Uint8Array(this.#take());
  }

  async blob(): Promise<Blob> {
    return new Blob([this.#take()]);
  }

  async formData(): Promise<FormData> {
    return this.#real().formData();
  }

  clone(): Response {
    return this.#real();
  }

  #take(): Buffer {
    if (this.#used) throw new TypeError("Body is unusable: Body has already been read");
    this.#used = true;
    return this.#buffer;
  }

  #real(): Response {
    const nullBody = this.status === 204 || this.status === 304;
    return new Response(nullBody ? null : this.#buffer, this);
  }
}

function bufferedResponse(meta: Meta, buffer: Buffer): Response {
  return new BufferedResponse(meta, buffer) as unknown as Response;
}

/** How meterline reaches a provider through its official SDK. */
export interface ProviderClientOptions {
  apiKey: string;
  baseURL?: string;
  timeoutMs: number;
  /** Idle keep-alive connections kept; the worker's chat concurrency. */
  maxIdleConnections?: number;
}

/**
 * The constructor options the openai and @anthropic-ai/sdk clients share: no SDK retries (retries
 * are the queue's job, which never pays the provider twice), the timeout, and the keep-alive fetch.
 */
export function sdkClientOptions(options: ProviderClientOptions) {
  return {
    apiKey: options.apiKey,
    baseURL: options.baseURL,
    timeout: options.timeoutMs,
    maxRetries: 0,
    fetch: createHttpFetch({ maxFreeSockets: options.maxIdleConnections }),
  };
}
