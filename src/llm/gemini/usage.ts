import type { GenerateContentResponseUsageMetadata } from "@google/genai";
import type OpenAI from "openai";

/**
 * Gemini's usage in meterline's taxonomy (the OpenAI `CompletionUsage` shape). The one place that
 * reads Gemini's token fields; every Gemini usage row is mapped here.
 * - prompt_tokens = promptTokenCount + toolUsePromptTokenCount. promptTokenCount already INCLUDES
 *   cachedContentTokenCount (a subset, as OpenAI's cached_tokens). toolUsePromptTokenCount is what
 *   Google's own tools (search, code execution) fed back to the model: input Google bills at the
 *   input price, and it is in Gemini's totalTokenCount, so it is prompt here.
 * - cached_tokens = cachedContentTokenCount (implicit or explicit cache read);
 *   cache_write_tokens = 0: implicit caching has no write charge (explicit caches are billed by
 *   storage time, outside a request).
 * - completion_tokens = candidatesTokenCount + thoughtsTokenCount: Gemini reports thinking APART
 *   from the candidates and bills it as output, so it is never dropped;
 *   reasoning_tokens = thoughtsTokenCount.
 */
export function geminiUsage(m: GenerateContentResponseUsageMetadata): OpenAI.CompletionUsage {
  const prompt = (m.promptTokenCount ?? 0) + (m.toolUsePromptTokenCount ?? 0);
  const reasoning = m.thoughtsTokenCount ?? 0;
  const completion = (m.candidatesTokenCount ?? 0) + reasoning;
  return {
    prompt_tokens: prompt,
    completion_tokens: completion,
    total_tokens: prompt + completion,
    prompt_tokens_details: { cached_tokens: m.cachedContentTokenCount ?? 0, cache_write_tokens: 0 },
    completion_tokens_details: { reasoning_tokens: reasoning },
  };
}
