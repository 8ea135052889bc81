import OpenAI from "openai";
import { RetryableError } from "../errors.js";
import { sdkClientOptions, type ProviderClientOptions } from "./http-fetch.js";
import { classifyProviderFailure } from "./provider-errors.js";
import type { ProviderChunk } from "./stream.js";

export type ChatCompletion = OpenAI.ChatCompletion;
export type ChatRequest = OpenAI.ChatCompletionCreateParamsNonStreaming;

export interface Llm {
  complete(request: ChatRequest, options?: { signal?: AbortSignal }): Promise<ChatCompletion>;
  /** Streams chunks, always asking the provider for a final usage chunk; errors are classified. */
  stream(request: ChatRequest, options?: { signal?: AbortSignal }): AsyncIterable<ProviderChunk>;
}

/** The LLM behind meterline, through the official SDK. Retries are the queue's job, not the SDK's. */
export function createLlm(options: ProviderClientOptions): Llm {
  const client = new OpenAI(sdkClientOptions(options));
  return {
    async complete(request, { signal } = {}) {
      try {
        return await client.chat.completions.create({ ...request, stream: false }, { signal });
      } catch (err) {
        throw classifyLlmError(err);
      }
    },
    async *stream(request, { signal } = {}) {
      try {
        // Usage is always requested: a stream without it would be billed from an estimate.
        const params = { ...request, stream: true as const, stream_options: { include_usage: true } };
        const stream = await client.chat.completions.create(params, { signal });
        for await (const chunk of stream) yield chunk;
      } catch (err) {
        throw classifyLlmError(err);
      }
    },
  };
}

/**
 * Sorts provider failures by what to do: rate limits, timeouts, conflicts and 5xx are retried; any
 * other 4xx is the request's fault and fails at once with the provider's status. A permanent
 * error's message is what the customer may see (provider-errors.ts); the provider's own text stays
 * on `cause`, for the operator's log.
 */
export function classifyLlmError(err: unknown): Error {
  if (err instanceof OpenAI.APIConnectionError) {
    return new RetryableError(`LLM unreachable: ${err.message}`, { cause: err });
  }
  if (err instanceof OpenAI.APIError) {
    const body = err.error as { message?: string } | undefined;
    const failure = {
      provider: "LLM",
      status: err.status ?? 0,
      providerMessage: body?.message,
      type: err.type ?? "invalid_request_error",
      code: err.code ?? null,
    };
    return classifyProviderFailure(failure, err);
  }
  return err instanceof Error ? err : new Error(String(err));
}
