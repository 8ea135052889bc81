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
 * the queue's job. The caller's abort signal is the SDK's abortSignal, so an abort closes the HTTP
 * stream.
 */
export function createGeminiLlm(opts: { apiKey: string; baseURL?: string; timeoutMs: number }): Llm {
  const ai = new GoogleGenAI({
    apiKey: opts.apiKey,
    httpOptions: { timeout: opts.timeoutMs, ...(opts.baseURL ? { baseUrl: opts.baseURL } : {}) },
  });
  return {
    async complete(request, { signal } = {}) {
      const params = toGeminiRequest(request);
      try {
        const response = await ai.models.generateContent({
          ...params,
          config: { ...params.config, abortSignal: signal },
        });
        return toCompletion(response, request.model);
      } catch (err) {
        throw classifyGeminiError(err);
      }
    },
    async *stream(request, { signal } = {}) {
      const params = toGeminiRequest(request);
      try {
        const stream = await ai.models.generateContentStream({
          ...params,
          config: { ...params.config, abortSignal: signal },
        });
        yield* toChunks(stream, request.model);
      } catch (err) {
        throw classifyGeminiError(err);
      }
    },
  };
}
