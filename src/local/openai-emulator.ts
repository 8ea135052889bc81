import { createHash, randomUUID } from "node:crypto";
import { EventEmitter, once } from "node:events";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { decode, decodeGenerator, encode } from "gpt-tokenizer";
import { countPromptTokens, textOf } from "./openai-emulator-tokens.js";

export type EmulatorFault =
  | { kind: "status"; status: number; message?: string; type?: string; code?: string; times?: number }
  | { kind: "drop"; times?: number }
  | { kind: "hang"; times?: number };
export interface OpenAIEmulatorOptions {
  host?: string;
  port?: number;
  latencyMs?: number;
  chunkDelayMs?: number;
  apiKey?: string;
  omitUsage?: boolean;
  /** Answer every chat with this many tokens of filler (up to its max tokens) instead of an echo. */
  answerTokens?: number;
}
export interface EmulatorRequestRecord {
  id: string;
  model: string;
  stream: boolean;
  status: number; // 0 when no HTTP status was sent (drop, hang)
  aborted: boolean; // the client went away before the answer was complete
  promptTokens: number;
  completionTokens: number; // for aborted streams: reasoning + visible tokens sent so far
}
export interface OpenAIEmulator {
  url: string;
  port: number;
  calls: number; // live count of POST /v1/chat/completions, including faulted ones
  requests: EmulatorRequestRecord[];
  /** Emits "request" (record) once per chat request, when its response closes (finished, failed or aborted). */
  events: EventEmitter;
  setLatency(ms: number): void;
  setChunkDelay(ms: number): void;
  setOmitUsage(omit: boolean): void;
  setAnswerTokens(tokens: number | undefined): void;
  injectFault(fault: EmulatorFault): void;
  clearFaults(): void;
  close(): Promise<void>;
}

const MODELS = ["gpt-4o-mini", "gpt-4o", "gpt-4.1-mini", "o4-mini"];
const MAX_BODY_BYTES = 8 * 1024 * 1024;
const MAX_RECORDS = 10_000;
const MAX_SEEN_PROMPTS = 10_000;
const TOKENS_PER_CHUNK = 4;
const LOREM = "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt.";
// User text may contain "<|endoftext|>" etc.; count it as plain text instead of throwing.
const PLAIN = { disallowedSpecial: new Set<string>() };

const BLANK_RECORD = {
  model: "",
  stream: false,
  status: 0,
  aborted: false,
  promptTokens: 0,
  completionTokens: 0,
};

type Json = Record<string, unknown>;
const isObj = (v: unknown): v is Json => typeof v === "object" && v !== null && !Array.isArray(v);

/** Deterministic answer: "Echo: " + the first 40 words (≤ 400 chars) of the last user message. */
export function answerFor(messages: readonly unknown[]): string {
  const lastUser = messages.findLast((m) => isObj(m) && m.role === "user");
  const words = textOf(isObj(lastUser) ? lastUser.content : "")
    .split(/\s+/)
    .filter(Boolean)
    .slice(0, 40);
  if (words.length === 0) return LOREM;
  const text = `Echo: ${words.join(" ")}`;
  return text.length <= 400 ? text : Array.from(text).slice(0, 400).join("");
}

/** Filler of exactly `tokens` tokens: a long answer, for tests of completion caps. */
export function fillerAnswer(tokens: number): string {
  const lorem = encode(LOREM, PLAIN);
  const repeated = LOREM.concat(" ").repeat(Math.ceil(tokens / lorem.length) + 1);
  return decode(encode(repeated, PLAIN).slice(0, tokens));
}

const isReasoningModel = (model: string) => /^o\d/.test(model) || model.includes("reasoning");

type Chunk = { text: string; tokens: number };

/**
 * Reasoning models spend 2x the untruncated answer on hidden reasoning first, out of the same
 * max-tokens budget (as real o-series models do), so a small budget can yield empty content.
 */
function generate(answer: string, model: string, limit: number) {
  const tokens = encode(answer, PLAIN);
  const reasoning = isReasoningModel(model) ? Math.min(2 * tokens.length, limit) : 0;
  const budget = limit - reasoning;
  // Decode the full token list (never a partial one: gpt-tokenizer's shared streaming TextDecoder
  // would carry a dangling byte into the next decode) and attribute each piece its token count.
  let consumed = 0;
  let attributed = 0;
  const counted = (function* () {
    for (const t of tokens) {
      consumed++;
      yield t;
    }
  })();
  const pieces: Chunk[] = [];
  for (const text of decodeGenerator(counted)) {
    pieces.push({ text, tokens: consumed - attributed });
    attributed = consumed;
  }
  const chunks: Chunk[] = [];
  let visible = 0;
  for (const p of pieces) {
    if (visible + p.tokens > budget) break;
    visible += p.tokens;
    const last = chunks.at(-1);
    if (last && last.tokens < TOKENS_PER_CHUNK) {
      last.text += p.text;
      last.tokens += p.tokens;
    } else chunks.push({ ...p });
  }
  return { chunks, visible, reasoning, truncated: visible < tokens.length };
}

function errorDefaults(status: number): [message: string, type: string, code: string | null] {
  if (status === 429) return ["Rate limit reached for requests", "rate_limit_error", "rate_limit_exceeded"];
  if (status >= 500) return ["The server had an error while processing your request.", "server_error", null];
  if (status === 401) return ["Incorrect API key provided", "invalid_request_error", "invalid_api_key"];
  return ["Invalid request", "invalid_request_error", null];
}

function sendJson(res: ServerResponse, status: number, body: unknown, headers: object = {}): void {
  const s = JSON.stringify(body);
  res.writeHead(status, {
    "content-type": "application/json",
    "content-length": Buffer.byteLength(s),
    ...headers,
  });
  res.end(s);
}

type ErrorInfo = { message?: string; type?: string; code?: string | null; param?: string };
function sendError(res: ServerResponse, status: number, e: ErrorInfo): void {
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

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const parts: Buffer[] = [];
  let size = 0;
  for await (const part of req as AsyncIterable<Buffer>) {
    size += part.length;
    if (size > MAX_BODY_BYTES) throw new HttpError(413, "Request body too large");
    parts.push(part);
  }
  if (size === 0) return undefined;
  try {
    return JSON.parse(Buffer.concat(parts).toString("utf8"));
  } catch {
    throw new HttpError(400, "We could not parse the JSON body of your request.");
  }
}

function parseFault(v: unknown): EmulatorFault {
  if (!isObj(v)) throw new HttpError(400, "fault must be an object");
  const times = typeof v.times === "number" && v.times > 0 ? v.times : undefined;
  if (v.kind === "drop" || v.kind === "hang") return { kind: v.kind, times };
  if (v.kind !== "status" || typeof v.status !== "number" || v.status < 100 || v.status > 599)
    throw new HttpError(400, 'fault must be {kind:"status",status:100..599} | {kind:"drop"} | {kind:"hang"}');
  const str = (x: unknown) => (typeof x === "string" ? x : undefined);
  const [message, type, code] = [str(v.message), str(v.type), str(v.code)];
  return { kind: "status", status: v.status, message, type, code, times };
}

export async function startOpenAIEmulator(opts: OpenAIEmulatorOptions = {}): Promise<OpenAIEmulator> {
  const cfg = {
    latencyMs: opts.latencyMs ?? 0,
    chunkDelayMs: opts.chunkDelayMs ?? 0,
    omitUsage: opts.omitUsage ?? false,
    answerTokens: opts.answerTokens,
  };
  let filler: { tokens: number; text: string } | undefined;
  const answer = (messages: unknown[]) => {
    if (cfg.answerTokens === undefined) return answerFor(messages);
    if (filler?.tokens !== cfg.answerTokens)
      filler = { tokens: cfg.answerTokens, text: fillerAnswer(cfg.answerTokens) };
    return filler.text;
  };
  const faults: { fault: EmulatorFault; left: number }[] = [];
  const requests: EmulatorRequestRecord[] = [];
  const seenPrompts = new Map<string, true>();
  const timers = new Set<NodeJS.Timeout>();
  const events = new EventEmitter();
  const open = new Set<ServerResponse>();
  let calls = 0;

  // Resolves after ms unless the request is aborted or the emulator closed (then never, by design).
  const sleep = (ms: number, ctx: { timer?: NodeJS.Timeout }) =>
    new Promise<void>((resolve) => {
      const t = setTimeout(() => {
        timers.delete(t);
        ctx.timer = undefined;
        resolve();
      }, ms);
      timers.add(t);
      ctx.timer = t;
    });

  const cachedTokens = (model: string, messages: unknown[], promptTokens: number): number => {
    if (promptTokens < 1024) return 0;
    const key = createHash("sha1")
      .update(`${model}\0${JSON.stringify(messages)}`)
      .digest("base64");
    const hit = seenPrompts.delete(key); // delete + set keeps Map order as recency
    seenPrompts.set(key, true);
    if (seenPrompts.size > MAX_SEEN_PROMPTS) seenPrompts.delete(seenPrompts.keys().next().value as string);
    return hit ? Math.floor(promptTokens / 128) * 128 : 0;
  };

  const takeFault = (): EmulatorFault | undefined => {
    const head = faults[0];
    if (!head) return undefined;
    if (--head.left <= 0) faults.shift();
    return head.fault;
  };

  async function chat(req: IncomingMessage, res: ServerResponse): Promise<void> {
    calls++;
    const hex = randomUUID().replaceAll("-", "");
    const [id, requestId] = [`chatcmpl-${hex.slice(0, 29)}`, `req_${hex}`];
    const rec: EmulatorRequestRecord = { ...BLANK_RECORD, id };
    requests.push(rec);
    if (requests.length > MAX_RECORDS) requests.shift();
    const ctx = { timer: undefined as NodeJS.Timeout | undefined, closed: false, dropped: false };
    open.add(res);
    res.once("close", () => {
      open.delete(res);
      ctx.closed = true;
      if (!res.writableFinished && !ctx.dropped) rec.aborted = true;
      if (ctx.timer) {
        clearTimeout(ctx.timer);
        timers.delete(ctx.timer);
      }
      events.emit("request", rec);
    });
    const fail = (status: number, e: ErrorInfo) => {
      rec.status = status;
      sendError(res, status, e);
    };

    let body: unknown;
    try {
      body = await readJson(req);
    } catch (err) {
      if (err instanceof HttpError) return fail(err.status, { message: err.message });
      throw err;
    }
    if (opts.apiKey !== undefined && req.headers.authorization !== `Bearer ${opts.apiKey}`)
      return fail(401, { message: "Incorrect API key provided" });
    if (isObj(body)) {
      rec.model = typeof body.model === "string" ? body.model : "";
      rec.stream = body.stream === true;
    }
    const fault = takeFault();
    if (fault?.kind === "status") return fail(fault.status, fault);
    if (fault?.kind === "drop") {
      ctx.dropped = true;
      req.socket.destroy();
      return;
    }
    if (fault?.kind === "hang") return;

    if (!isObj(body)) return fail(400, { message: "We could not parse the JSON body of your request." });
    const { model, messages } = body;
    if (typeof model !== "string" || model === "")
      return fail(400, { message: "you must provide a model parameter", param: "model" });
    const okMessages =
      Array.isArray(messages) && messages.every((m) => isObj(m) && typeof m.role === "string");
    if (!okMessages || messages.length === 0)
      return fail(400, { message: "'messages' must be a non-empty array of messages", param: "messages" });
    const rawLimit = body.max_completion_tokens ?? body.max_tokens;
    if (rawLimit != null && (typeof rawLimit !== "number" || !Number.isInteger(rawLimit) || rawLimit < 1))
      return fail(400, { message: "max_tokens must be a positive integer", param: "max_tokens" });

    const promptTokens = countPromptTokens(body);
    const cached = cachedTokens(model, messages, promptTokens);
    const gen = generate(answer(messages), model, typeof rawLimit === "number" ? rawLimit : Infinity);
    const completionTokens = gen.visible + gen.reasoning;
    const finishReason = gen.truncated ? "length" : "stop";
    const usage = {
      prompt_tokens: promptTokens,
      completion_tokens: completionTokens,
      total_tokens: promptTokens + completionTokens,
      prompt_tokens_details: { cached_tokens: cached },
      completion_tokens_details: { reasoning_tokens: gen.reasoning },
    };
    rec.promptTokens = promptTokens;
    const base = { id, created: Math.floor(Date.now() / 1000), model, system_fingerprint: "fp_emulator" };

    if (cfg.latencyMs > 0) await sleep(cfg.latencyMs, ctx);
    if (ctx.closed) return;

    if (!rec.stream) {
      rec.status = 200;
      rec.completionTokens = completionTokens;
      const content = gen.chunks.map((c) => c.text).join("");
      const message = { role: "assistant", content, refusal: null };
      const choices = [{ index: 0, message, finish_reason: finishReason, logprobs: null }];
      const out = { ...base, object: "chat.completion", choices, ...(cfg.omitUsage ? {} : { usage }) };
      return sendJson(res, 200, out, { "x-request-id": requestId });
    }

    const streamOptions = body.stream_options;
    const includeUsage = isObj(streamOptions) && streamOptions.include_usage === true && !cfg.omitUsage;
    const chunkBase = { ...base, object: "chat.completion.chunk" };
    const send = (choices: unknown[], extra: Json = includeUsage ? { usage: null } : {}) =>
      res.write(`data: ${JSON.stringify({ ...chunkBase, choices, ...extra })}\n\n`);
    const choice = (delta: Json, finish_reason: string | null = null) => ({
      index: 0,
      delta,
      logprobs: null,
      finish_reason,
    });

    rec.status = 200;
    rec.completionTokens = gen.reasoning; // hidden reasoning is generated before the first visible token
    const sseHeaders = { "content-type": "text/event-stream", "cache-control": "no-cache" };
    res.writeHead(200, { ...sseHeaders, "x-request-id": requestId });
    send([choice({ role: "assistant", content: "", refusal: null })]);
    for (const chunk of gen.chunks) {
      if (cfg.chunkDelayMs > 0) await sleep(cfg.chunkDelayMs, ctx);
      if (ctx.closed) return;
      send([choice({ content: chunk.text })]);
      rec.completionTokens += chunk.tokens;
    }
    send([choice({}, finishReason)]);
    if (includeUsage) send([], { usage });
    res.end("data: [DONE]\n\n");
  }

  async function control(req: IncomingMessage, res: ServerResponse, path: string): Promise<void> {
    if (req.method === "GET" && path === "/_emulator/stats")
      return sendJson(res, 200, { calls, requests: requests.slice(-100) });
    if (req.method !== "POST") throw new HttpError(404, `Invalid URL (${req.method} ${path})`);
    const body = await readJson(req);
    if (path === "/_emulator/faults") {
      if (isObj(body) && body.clear === true) faults.length = 0;
      else emulator.injectFault(parseFault(body));
      return sendJson(res, 200, { queued: faults.length });
    }
    if (path !== "/_emulator/config") throw new HttpError(404, `Invalid URL (${req.method} ${path})`);
    if (!isObj(body)) throw new HttpError(400, "config must be an object");
    if (typeof body.latencyMs === "number") cfg.latencyMs = Math.max(0, body.latencyMs);
    if (typeof body.chunkDelayMs === "number") cfg.chunkDelayMs = Math.max(0, body.chunkDelayMs);
    if (typeof body.omitUsage === "boolean") cfg.omitUsage = body.omitUsage;
    if (typeof body.answerTokens === "number" && body.answerTokens > 0) cfg.answerTokens = body.answerTokens;
    if (body.answerTokens === null) cfg.answerTokens = undefined;
    return sendJson(res, 200, cfg);
  }

  async function route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? "/").split("?")[0] ?? "/";
    if (req.method === "POST" && path === "/v1/chat/completions") return chat(req, res);
    if (path.startsWith("/_emulator/")) return control(req, res, path);
    if (req.method === "GET" && path === "/v1/models") {
      const data = MODELS.map((id) => ({ id, object: "model", created: 1_715_367_049, owned_by: "openai" }));
      return sendJson(res, 200, { object: "list", data });
    }
    throw new HttpError(404, `Invalid URL (${req.method} ${path})`);
  }

  const server = createServer((req, res) => {
    route(req, res).catch((err: unknown) => {
      if (res.headersSent || req.socket.destroyed) return void res.destroy();
      if (err instanceof HttpError) return sendError(res, err.status, { message: err.message });
      sendError(res, 500, {});
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(opts.port ?? 0, opts.host ?? "127.0.0.1", () => {
      server.off("error", reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  const host = opts.host ?? "127.0.0.1";

  const emulator: OpenAIEmulator = {
    url: `http://${host.includes(":") ? `[${host}]` : host}:${port}/v1`,
    port,
    get calls() {
      return calls;
    },
    requests,
    events,
    setLatency: (ms) => void (cfg.latencyMs = Math.max(0, ms)),
    setChunkDelay: (ms) => void (cfg.chunkDelayMs = Math.max(0, ms)),
    setOmitUsage: (omit) => void (cfg.omitUsage = omit),
    setAnswerTokens: (tokens) => void (cfg.answerTokens = tokens),
    injectFault: (fault) => void faults.push({ fault, left: fault.times ?? Infinity }),
    clearFaults: () => void (faults.length = 0),
    async close() {
      for (const t of timers) clearTimeout(t);
      timers.clear();
      faults.length = 0;
      // server.close() can call back before the responses' "close" events, so wait for those too:
      // records are final (aborted, tokens sent) once close() resolves.
      const finalized = Promise.all([...open].map((res) => once(res, "close")));
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections(); // also kills keep-alive and hanging sockets, so close() is prompt
      await Promise.all([closed, finalized]);
    },
  };
  return emulator;
}
