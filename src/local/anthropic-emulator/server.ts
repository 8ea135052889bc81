import { randomUUID } from "node:crypto";
import { EventEmitter } from "node:events";
import type { IncomingMessage, ServerResponse } from "node:http";
import { createEmulatorRuntime } from "../emulator-runtime.js";
import { OpenAIApiError, readJson, sendJson } from "../openai-emulator/http.js";
import { sendAnthropicError } from "./http.js";
import { measurePrompt } from "./prompt.js";
import { messageBody, writeEventStream, type PromptUsage, type StreamedReply } from "./events.js";
import { replyTo } from "./reply.js";
import type {
  AnthropicEmulator,
  AnthropicEmulatorFault,
  AnthropicEmulatorOptions,
  AnthropicRequestRecord,
} from "./types.js";
import { invalidRequest } from "./validate.js";

const MAX_RECORDS = 10_000;
const MAX_CACHED_PREFIXES = 10_000;

type Json = Record<string, unknown>;
// dropped: the emulator itself cut the connection (a fault), so the client did not abort.
type Ctx = { timer?: NodeJS.Timeout; closed: boolean; dropped: boolean };

/**
 * A local Anthropic Messages API (POST /v1/messages, plain and streamed) that the official
 * `@anthropic-ai/sdk` reaches through its `baseURL`: deterministic answers (reply.ts), prompt
 * caching and usage in Anthropic's own fields (prompt.ts), and injected faults.
 */
export async function startAnthropicEmulator(
  opts: AnthropicEmulatorOptions = {},
): Promise<AnthropicEmulator> {
  const cfg = { latencyMs: opts.latencyMs ?? 0, chunkDelayMs: opts.chunkDelayMs ?? 0 };
  const runtime = createEmulatorRuntime<AnthropicEmulatorFault>(Infinity);
  const { sleep, takeFault } = runtime;
  const requests: AnthropicRequestRecord[] = [];
  const cachedPrefixes = new Set<string>();
  const events = new EventEmitter();
  let calls = 0;

  /** Anthropic's prompt cache: the first request with a prefix writes it, a repeat reads it. */
  const cacheUsage = (body: Json): PromptUsage => {
    const { total, cacheable, cacheKey } = measurePrompt(body);
    if (cacheable === 0)
      return { input_tokens: total, cache_creation_input_tokens: 0, cache_read_input_tokens: 0 };
    const hit = cachedPrefixes.delete(cacheKey); // delete + add keeps Set order as recency
    cachedPrefixes.add(cacheKey);
    if (cachedPrefixes.size > MAX_CACHED_PREFIXES)
      cachedPrefixes.delete(cachedPrefixes.values().next().value as string);
    return {
      input_tokens: total - cacheable,
      cache_creation_input_tokens: hit ? 0 : cacheable,
      cache_read_input_tokens: hit ? cacheable : 0,
    };
  };

  async function messages(req: IncomingMessage, res: ServerResponse): Promise<void> {
    calls++;
    const hex = randomUUID().replaceAll("-", "");
    const [id, requestId] = [`msg_${hex.slice(0, 24)}`, `req_${hex}`];
    const rec: AnthropicRequestRecord = {
      id,
      model: "",
      stream: false,
      status: 0,
      aborted: false,
      body: undefined,
      inputTokens: 0,
      cacheCreationInputTokens: 0,
      cacheReadInputTokens: 0,
      outputTokens: 0,
    };
    requests.push(rec);
    if (requests.length > MAX_RECORDS) requests.shift();
    const ctx: Ctx = { closed: false, dropped: false };
    runtime.track(res);
    res.once("close", () => {
      ctx.closed = true;
      if (!res.writableFinished && !ctx.dropped) rec.aborted = true;
      if (ctx.timer) clearTimeout(ctx.timer);
      events.emit("request", rec);
    });
    const fail = (status: number, e: { message?: string; type?: string } = {}) => {
      rec.status = status;
      sendAnthropicError(res, status, e, requestId);
    };

    let body: unknown;
    try {
      body = await readJson(req);
    } catch (err) {
      if (err instanceof OpenAIApiError) return fail(err.status, { message: err.message });
      throw err;
    }
    rec.body = body;
    const key = apiKeyOf(req);
    if (!key || (opts.apiKey !== undefined && key !== opts.apiKey)) return fail(401);
    const json = (typeof body === "object" && body !== null ? body : {}) as Json;
    rec.model = typeof json.model === "string" ? json.model : "";
    rec.stream = json.stream === true;
    const fault = takeFault();
    if (fault?.kind === "status") return fail(fault.status, fault);
    if (fault?.kind === "drop" || fault?.kind === "hang") {
      ctx.dropped = true;
      if (fault.kind === "drop") req.socket.destroy();
      return;
    }
    const invalid = invalidRequest(body);
    if (invalid) return fail(400, { message: invalid });

    const usage = cacheUsage(json);
    const reply = replyTo(json);
    Object.assign(rec, {
      inputTokens: usage.input_tokens,
      cacheCreationInputTokens: usage.cache_creation_input_tokens,
      cacheReadInputTokens: usage.cache_read_input_tokens,
    });
    if (cfg.latencyMs > 0) await sleep(cfg.latencyMs, ctx);
    if (ctx.closed) return;
    rec.status = 200;
    const message = { id, type: "message", role: "assistant", model: rec.model };
    if (!rec.stream) {
      rec.outputTokens = reply.outputTokens;
      const answer = messageBody(message, usage, reply);
      rec.usage = answer.usage;
      return sendJson(res, 200, answer, { "request-id": requestId });
    }
    const cutAfter = fault?.kind === "cut" ? (fault.afterDeltas ?? 1) : Infinity;
    await streamReply(res, ctx, rec, { message, usage, reply, requestId, cutAfter });
  }

  /** Anthropic's event stream for a reply; destroyed after `cutAfter` content deltas for a "cut" fault. */
  async function streamReply(res: ServerResponse, ctx: Ctx, rec: AnthropicRequestRecord, s: StreamedReply) {
    let deltas = 0;
    const completed = await writeEventStream(res, s, {
      beforeDelta: async () => {
        if (cfg.chunkDelayMs > 0) await sleep(cfg.chunkDelayMs, ctx);
        if (ctx.closed) return false;
        if (deltas++ < s.cutAfter) return true;
        ctx.dropped = true;
        // Flush what was sent (an SSE comment carries the callback), so the client sees a stream cut mid-way.
        await new Promise<void>((resolve) => res.write(":\n\n", () => resolve()));
        res.destroy();
        return false;
      },
      sent: (tokens) => void (rec.outputTokens += tokens),
      reported: (usage) => void (rec.usage = usage),
    });
    if (completed) rec.outputTokens = s.reply.outputTokens;
  }

  async function route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? "/").split("?")[0] ?? "/";
    if (req.method === "POST" && path === "/v1/messages") return messages(req, res);
    sendAnthropicError(res, 404, { message: `Not found: ${req.method} ${path}` }, `req_${randomUUID()}`);
  }

  const { port, origin } = await runtime.listen((req, res) => {
    route(req, res).catch(() => {
      if (res.headersSent || req.socket.destroyed) return void res.destroy();
      sendAnthropicError(res, 500, {}, `req_${randomUUID()}`);
    });
  }, opts);

  return {
    url: origin,
    port,
    get calls() {
      return calls;
    },
    requests,
    events,
    setLatency: (ms) => void (cfg.latencyMs = Math.max(0, ms)),
    setChunkDelay: (ms) => void (cfg.chunkDelayMs = Math.max(0, ms)),
    injectFault: runtime.injectFault,
    setFault: runtime.injectFault,
    clearFaults: runtime.clearFaults,
    close: runtime.close,
  };
}

/**
 * The request's API key: the `x-api-key` header (curl, older SDKs) or `Authorization: Bearer`,
 * which @anthropic-ai/sdk 1.x sends for an `apiKey`.
 */
function apiKeyOf(req: IncomingMessage): string | undefined {
  const header = req.headers["x-api-key"];
  if (typeof header === "string" && header !== "") return header;
  const bearer = /^Bearer (.+)$/.exec(req.headers.authorization ?? "");
  return bearer?.[1];
}
