import { randomUUID } from "node:crypto";
import { EventEmitter } from "node:events";
import type { IncomingMessage, ServerResponse } from "node:http";
import { createEmulatorRuntime } from "../emulator-runtime.js";
import { createPromptCache } from "./prompt-cache.js";
import { answerFor, fillerAnswer, generate } from "./answers.js";
import { OpenAIApiError, readJson, sendError, sendJson, type ErrorInfo } from "./http.js";
import { countPromptTokens, isObj } from "./prompt-tokens.js";
import { toolCallFor } from "./tool-calls.js";
import type {
  EmulatorFault,
  EmulatorRequestRecord,
  OpenAIEmulator,
  OpenAIEmulatorOptions,
  OpenAIReportedUsage,
} from "./types.js";

const MAX_RECORDS = 10_000;

const BLANK_RECORD = {
  model: "",
  stream: false,
  status: 0,
  aborted: false,
  promptTokens: 0,
  completionTokens: 0,
};

type Json = Record<string, unknown>;

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
  const runtime = createEmulatorRuntime<EmulatorFault>(Infinity);
  const { sleep, takeFault } = runtime;
  const requests: EmulatorRequestRecord[] = [];
  const cachedTokens = createPromptCache();
  const events = new EventEmitter();
  let calls = 0;

  async function chat(req: IncomingMessage, res: ServerResponse): Promise<void> {
    calls++;
    const hex = randomUUID().replaceAll("-", "");
    const [id, requestId] = [`chatcmpl-${hex.slice(0, 29)}`, `req_${hex}`];
    const rec: EmulatorRequestRecord = { ...BLANK_RECORD, id };
    requests.push(rec);
    if (requests.length > MAX_RECORDS) requests.shift();
    const ctx = { timer: undefined as NodeJS.Timeout | undefined, closed: false, dropped: false };
    runtime.track(res);
    res.once("close", () => {
      ctx.closed = true;
      if (!res.writableFinished && !ctx.dropped) rec.aborted = true;
      if (ctx.timer) clearTimeout(ctx.timer);
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
      if (err instanceof OpenAIApiError) return fail(err.status, { message: err.message });
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
    const limit = typeof rawLimit === "number" ? rawLimit : Infinity;
    const call = toolCallFor(body, limit);
    const gen = generate(call ? "" : answer(messages), model, limit);
    const completionTokens = gen.visible + gen.reasoning + (call?.tokens ?? 0);
    const finishReason = call ? "tool_calls" : gen.truncated ? "length" : "stop";
    const toolCall = call && {
      id: call.id,
      type: "function",
      function: { name: call.name, arguments: call.arguments },
    };
    const usage: OpenAIReportedUsage = {
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
      const message = toolCall
        ? { role: "assistant", content: null, refusal: null, tool_calls: [toolCall] }
        : { role: "assistant", content, refusal: null };
      const choices = [{ index: 0, message, finish_reason: finishReason, logprobs: null }];
      if (!cfg.omitUsage) rec.usage = usage;
      const out = { ...base, object: "chat.completion", choices, ...(rec.usage ? { usage } : {}) };
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
    if (call && toolCall) {
      // As OpenAI streams a call: its id and name first, then the arguments.
      send([
        choice({ tool_calls: [{ index: 0, ...toolCall, function: { name: call.name, arguments: "" } }] }),
      ]);
      if (cfg.chunkDelayMs > 0) await sleep(cfg.chunkDelayMs, ctx);
      if (ctx.closed) return;
      send([choice({ tool_calls: [{ index: 0, function: { arguments: call.arguments } }] })]);
      rec.completionTokens += call.tokens;
    }
    send([choice({}, finishReason)]);
    if (includeUsage) {
      send([], { usage });
      rec.usage = usage;
    }
    res.end("data: [DONE]\n\n");
  }

  // The one control route: bench runs the emulator as its own process and sets latency through it.
  async function configure(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = await readJson(req);
    if (!isObj(body)) throw new OpenAIApiError(400, "config must be an object");
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
    if (req.method === "POST" && path === "/_emulator/config") return configure(req, res);
    throw new OpenAIApiError(404, `Invalid URL (${req.method} ${path})`);
  }

  const { port, origin } = await runtime.listen((req, res) => {
    route(req, res).catch((err: unknown) => {
      if (res.headersSent || req.socket.destroyed) return void res.destroy();
      if (err instanceof OpenAIApiError) return sendError(res, err.status, { message: err.message });
      sendError(res, 500, {});
    });
  }, opts);

  const emulator: OpenAIEmulator = {
    url: `${origin}/v1`,
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
    injectFault: runtime.injectFault,
    clearFaults: runtime.clearFaults,
    close: runtime.close,
  };
  return emulator;
}
