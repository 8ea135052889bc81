import type Anthropic from "@anthropic-ai/sdk";
import type OpenAI from "openai";

/** The usage fields Anthropic reports on a message, or on a stream's message_start and message_delta. */
export type AnthropicUsageFields = Pick<
  Anthropic.Usage,
  "input_tokens" | "output_tokens" | "cache_creation_input_tokens" | "cache_read_input_tokens"
> & { output_tokens_details?: Anthropic.OutputTokensDetails | null };

/**
 * Anthropic's usage in meterline's taxonomy (OpenAI's shape, which the ledger reads).
 *
 * Anthropic's `input_tokens` EXCLUDES cached tokens: `cache_creation_input_tokens` (written to the
 * cache, billed above plain input) and `cache_read_input_tokens` (read from it, billed below) come
 * on top. OpenAI's `cached_tokens` are a subset of `prompt_tokens`, so:
 * - prompt_tokens = input + cache_creation + cache_read (all input);
 * - prompt_tokens_details.cached_tokens = cache_read;
 * - prompt_tokens_details.cache_write_tokens = cache_creation (an extension of OpenAI's shape);
 * - completion_tokens = output_tokens, which already includes extended thinking;
 * - completion_tokens_details.reasoning_tokens = output_tokens_details.thinking_tokens when the
 *   provider reports it (a subset, clamped to output_tokens, never added again), else 0.
 */
export function anthropicUsage(u: AnthropicUsageFields): OpenAI.CompletionUsage {
  const input = count(u.input_tokens);
  const cacheWrite = count(u.cache_creation_input_tokens);
  const cacheRead = count(u.cache_read_input_tokens);
  const output = count(u.output_tokens);
  const promptTokens = input + cacheWrite + cacheRead;
  const details: OpenAI.CompletionUsage.PromptTokensDetails & { cache_write_tokens: number } = {
    cached_tokens: cacheRead,
    cache_write_tokens: cacheWrite,
  };
  return {
    prompt_tokens: promptTokens,
    completion_tokens: output,
    total_tokens: promptTokens + output,
    prompt_tokens_details: details,
    completion_tokens_details: {
      reasoning_tokens: Math.min(count(u.output_tokens_details?.thinking_tokens), output),
    },
  };
}

function count(value: number | null | undefined): number {
  return Number.isInteger(value) && (value as number) > 0 ? (value as number) : 0;
}
