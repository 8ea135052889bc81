import Anthropic from "@anthropic-ai/sdk";
import type { Llm } from "../client.js";
import { sdkClientOptions, type ProviderClientOptions } from "../http-fetch.js";
import { classifyAnthropicError } from "./errors.js";
import { toMessageParams } from "./request.js";
import { toChatCompletion } from "./response.js";
import { toChunks } from "./stream.js";

/**
 * Anthropic models behind meterline's OpenAI-format `Llm`, through the official SDK's Messages API.
 * Requests and answers are translated both ways (request.ts, response.ts, stream.ts), usage into
 * meterline's taxonomy (usage.ts), failures into Retryable/Permanent errors (errors.ts). Retries
 * are the queue's job, not the SDK's; `signal` aborts the HTTP request, streams included.
 */
export function createAnthropicLlm(options: ProviderClientOptions): Llm {
  const client = new Anthropic(sdkClientOptions(options));
  return {
    async complete(request, { signal } = {}) {
      const params = toMessageParams(request);
      try {
        return toChatCompletion(await client.messages.create(params, { signal }));
      } catch (err) {
        throw classifyAnthropicError(err);
      }
    },
    async *stream(request, { signal } = {}) {
      const params = { ...toMessageParams(request), stream: true as const };
      try {
        yield* toChunks(await client.messages.create(params, { signal }), signal);
      } catch (err) {
        throw classifyAnthropicError(err);
      }
    },
  };
}
