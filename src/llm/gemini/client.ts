import { GoogleGenAI } from "@google/genai";
import type { Llm } from "../client.js";
import { classifyGeminiError } from "./errors.js";
import { toGeminiRequest } from "./request.js";
import { toCompletion } from "./response.js";
import { toChunks } from "./stream.js";

export { geminiUsage } from "./usage.js";

/**
 * Gemini behind meterline's OpenAI-shaped `Llm`, through the official `@google/genai` SDK (the
 * Gemini Developer API). Requests and answers are translated both ways (request.ts, response.ts,
 * stream.ts); usage is mapped by geminiUsage. The SDK does not retry (no retryOptions): retries are
 * the queue's job. The caller's abort signal reaches the SDK's abortSignal, so an abort closes the
 * HTTP stream.
 */
export function createGeminiLlm(opts: { apiKey: string; baseURL?: string; timeoutMs: number }): Llm {
  const ai = new GoogleGenAI({
    apiKey: opts.apiKey,
    ...(opts.baseURL ? { httpOptions: { baseUrl: opts.baseURL } } : {}),
  });
  return {
    async complete(request, { signal } = {}) {
      const params = toGeminiRequest(request);
      const deadline = untilAnswered(opts.timeoutMs, signal);
      try {
        const response = await ai.models.generateContent({
          ...params,
          config: { ...params.config, abortSignal: deadline.signal },
        });
        return toCompletion(response, request.model);
      } catch (err) {
        throw classifyGeminiError(err);
      } finally {
        deadline.clear();
      }
    },
    async *stream(request, { signal } = {}) {
      const params = toGeminiRequest(request);
      const deadline = untilAnswered(opts.timeoutMs, signal);
      try {
        const stream = await ai.models.generateContentStream({
          ...params,
          config: { ...params.config, abortSignal: deadline.signal },
        });
        deadline.clear();
        yield* toChunks(stream, request.model);
      } catch (err) {
        throw classifyGeminiError(err);
      } finally {
        deadline.clear();
      }
    },
  };
}

/**
 * The caller's signal, also aborted when Gemini has not answered within timeoutMs. Cleared once it
 * answers (a stream's headers), as the openai SDK's timeout is: the SDK's own `timeout` would stay
 * armed while a stream is read and cut every stream longer than it.
 */
function untilAnswered(timeoutMs: number, signal: AbortSignal | undefined) {
  const timeout = new AbortController();
  const timer = setTimeout(
    () => timeout.abort(new Error(`Gemini did not answer within ${timeoutMs} ms`)),
    timeoutMs,
  );
  return {
    signal: signal ? AbortSignal.any([signal, timeout.signal]) : timeout.signal,
    clear: () => clearTimeout(timer),
  };
}
