import { randomUUID } from "node:crypto";
import { EventEmitter } from "node:events";
import type { IncomingMessage, ServerResponse } from "node:http";
import { createEmulatorRuntime } from "../emulator-runtime.js";
import { OpenAIApiError, readJson, sendJson } from "../openai-emulator/http.js";
import { isObj } from "../openai-emulator/prompt-tokens.js";
import { answerTo, type GeminiAnswer } from "./answer.js";
import { GeminiApiError, invalidKey, sendGoogleError } from "./http.js";
import { createImplicitCache } from "./prompt.js";
import type {
  GeminiEmulator,
  GeminiEmulatorFault,
  GeminiEmulatorOptions,
  GeminiRequestRecord,
} from "./types.js";

type Json = Record<string, unknown>;

const MAX_RECORDS = 1_000;
const ROUTE = /^\/v1beta\/models\/([^/:]+):(generateContent|streamGenerateContent)$/;

/**
 * A local Gemini Developer API: POST /v1beta/models/{model}:generateContent and
 * :streamGenerateContent?alt=sse, reached by @google/genai through `httpOptions.baseUrl`. It answers
 * deterministically (answer.ts) with Gemini's own usage fields — implicit cache reads, thinking
 * tokens — and injects faults (status codes, answers cut mid-way, latency).
 */
export async function startGeminiEmulator(opts: GeminiEmulatorOptions = {}): Promise<GeminiEmulator> {
  const cfg = { latencyMs: opts.latencyMs ?? 0, chunkDelayMs: opts.chunkDelayMs ?? 0 };
  const runtime = createEmulatorRuntime<GeminiEmulatorFault>(1);
  const { sleep, takeFault } = runtime;
  const requests: GeminiRequestRecord[] = [];
  const events = new EventEmitter();
  const implicitCache = createImplicitCache();

  async function generate(req: IncomingMessage, res: ServerResponse, model: string, stream: boolean) {
    const responseId = randomUUID().replaceAll("-", "").slice(0, 22);
    const rec: GeminiRequestRecord = {
      id: responseId,
      model,
      stream,
      status: 0,
      aborted: false,
      promptTokens: 0,
      cachedTokens: 0,
      thoughtsTokens: 0,
      candidatesTokens: 0,
      body: undefined,
    };
    requests.push(rec);
    if (requests.length > MAX_RECORDS) requests.shift();
    const ctx = { timer: undefined as NodeJS.Timeout | undefined, closed: false, cut: false };
    runtime.track(res);
    res.once("close", () => {
      ctx.closed = true;
      if (!res.writableFinished && !ctx.cut) rec.aborted = true;
      if (ctx.timer) clearTimeout(ctx.timer);
      events.emit("request", rec);
    });
    try {
      await respond(req, res, rec, ctx);
    } catch (err) {
      rec.status = err instanceof GeminiApiError ? err.status : 500;
      throw err;
    }
  }

  async function respond(
    req: IncomingMessage,
    res: ServerResponse,
    rec: GeminiRequestRecord,
    ctx: { timer?: NodeJS.Timeout; closed: boolean; cut: boolean },
  ): Promise<void> {
    const { model, stream, id: responseId } = rec;
    const body = (rec.body = await readBody(req));
    checkKey(req);
    const fault = takeFault();
    if (fault?.kind === "status") throw new GeminiApiError(fault.status, fault.message);
    const cutAfter = fault?.kind === "cut" ? fault.afterChunks : Infinity;
    const cut = () => {
      ctx.cut = true;
      req.socket.destroy();
    };
    if (cutAfter === 0) return cut();
    validate(model, body);

    const { promptTokens, cached } = implicitCache(model, body);
    const answer = answerTo(body);
    Object.assign(rec, { promptTokens, cachedTokens: cached, thoughtsTokens: answer.thoughts });
    // Each usageMetadata is remembered on the record as it is sent.
    const usage = (candidates: number) =>
      (rec.usage = {
        promptTokenCount: promptTokens,
        candidatesTokenCount: candidates,
        totalTokenCount: promptTokens + candidates + answer.thoughts,
        ...(cached > 0 ? { cachedContentTokenCount: cached } : {}),
        ...(answer.thoughts > 0 ? { thoughtsTokenCount: answer.thoughts } : {}),
        promptTokensDetails: [{ modality: "TEXT", tokenCount: promptTokens }],
      });
    const base = { modelVersion: model, responseId };

    if (cfg.latencyMs > 0) await sleep(cfg.latencyMs, ctx);
    if (ctx.closed) return;
    if (!stream) {
      if (cutAfter !== Infinity) return cut();
      Object.assign(rec, { status: 200, candidatesTokens: answer.candidates });
      const parts = [...callParts(answer), ...textParts(answer)];
      const candidate = { content: { role: "model", parts }, finishReason: answer.finishReason, index: 0 };
      return sendJson(res, 200, {
        candidates: [candidate],
        usageMetadata: usage(answer.candidates),
        ...base,
      });
    }

    rec.status = 200;
    res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
    for (const [i, { parts, tokens, last }] of streamEvents(answer).entries()) {
      if (i >= cutAfter) return cut();
      if (cfg.chunkDelayMs > 0 && i > 0) await sleep(cfg.chunkDelayMs, ctx);
      if (ctx.closed) return;
      rec.candidatesTokens += tokens;
      const candidate = {
        content: { role: "model", parts },
        index: 0,
        ...(last ? { finishReason: answer.finishReason } : {}),
      };
      res.write(
        `data: ${JSON.stringify({ candidates: [candidate], usageMetadata: usage(rec.candidatesTokens), ...base })}\r\n\r\n`,
      );
    }
    res.end();
  }

  function checkKey(req: IncomingMessage): void {
    const key = req.headers["x-goog-api-key"] ?? new URL(req.url ?? "/", "http://x").searchParams.get("key");
    if (!key)
      throw new GeminiApiError(
        403,
        "Method doesn't allow unregistered callers (callers without established identity). Please use API Key or other form of API consumer identity to call this API.",
      );
    if (opts.apiKey !== undefined && key !== opts.apiKey) throw invalidKey();
  }

  async function route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://x");
    const match = ROUTE.exec(url.pathname);
    if (req.method !== "POST" || !match)
      throw new GeminiApiError(404, `Invalid URL (${req.method} ${url.pathname})`);
    const [, model = "", method] = match;
    const stream = method === "streamGenerateContent";
    if (stream && url.searchParams.get("alt") !== "sse")
      throw new GeminiApiError(400, "Only alt=sse streams are emulated.");
    return generate(req, res, decodeURIComponent(model), stream);
  }

  const { port, origin } = await runtime.listen((req, res) => {
    route(req, res).catch((err: unknown) => {
      if (res.headersSent || req.socket.destroyed) return void res.destroy();
      sendGoogleError(res, err instanceof GeminiApiError ? err : new GeminiApiError(500));
    });
  }, opts);

  return {
    url: origin,
    port,
    requests,
    events,
    setLatency: (ms) => void (cfg.latencyMs = Math.max(0, ms)),
    setChunkDelay: (ms) => void (cfg.chunkDelayMs = Math.max(0, ms)),
    setFault: runtime.injectFault,
    clearFaults: runtime.clearFaults,
    close: runtime.close,
  };
}

async function readBody(req: IncomingMessage): Promise<Json> {
  try {
    const body = await readJson(req);
    if (isObj(body)) return body;
  } catch (err) {
    if (err instanceof OpenAIApiError) throw new GeminiApiError(err.status, err.message);
    throw err;
  }
  throw new GeminiApiError(400, "Invalid JSON payload received.");
}

/** Gemini's own refusals of a malformed request, and of models it does not know. */
function validate(model: string, body: Json): void {
  if (!model.startsWith("gemini-"))
    throw new GeminiApiError(
      404,
      `models/${model} is not found for API version v1beta, or is not supported for generateContent.`,
    );
  const contents = body.contents;
  if (!Array.isArray(contents) || contents.length === 0)
    throw new GeminiApiError(400, "* GenerateContentRequest.contents: contents is not specified");
  const config = isObj(body.generationConfig) ? body.generationConfig : {};
  const max = config.maxOutputTokens;
  if (max !== undefined && (typeof max !== "number" || !Number.isInteger(max) || max < 1))
    throw new GeminiApiError(400, "* GenerationConfig.max_output_tokens: must be a positive integer");
}

/** Function call parts; after thinking each carries a thoughtSignature, as Gemini 2.5 sends. */
function callParts(answer: GeminiAnswer): Json[] {
  const signature = Buffer.from(`emulated-thought-${answer.thoughts}`).toString("base64");
  return answer.functionCalls.map((functionCall) => ({
    functionCall,
    ...(answer.thoughts > 0 ? { thoughtSignature: signature } : {}),
  }));
}

/** The text of an answer, in one part (what generateContent returns). */
function textParts(answer: GeminiAnswer): Json[] {
  const text = answer.chunks.map((c) => c.text).join("");
  return text || answer.functionCalls.length === 0 ? [{ text }] : [];
}

/** A streamed answer's events: a function call in one chunk, text a few tokens a chunk; finishReason on the last. */
function streamEvents(answer: GeminiAnswer): { parts: Json[]; tokens: number; last: boolean }[] {
  const out: { parts: Json[]; tokens: number }[] = answer.functionCalls.length
    ? [{ parts: callParts(answer), tokens: answer.candidates }]
    : answer.chunks.map((c) => ({ parts: [{ text: c.text }], tokens: c.tokens }));
  if (out.length === 0) out.push({ parts: [{ text: "" }], tokens: 0 });
  return out.map((e, i) => ({ ...e, last: i === out.length - 1 }));
}
