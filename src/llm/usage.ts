import type OpenAI from "openai";
import { countTokens } from "gpt-tokenizer";
import type { TokenUsage } from "../billing/prices.js";

/**
 * Reads the provider's usage into the ledger's taxonomy. Subsets are clamped into their parents so
 * a provider that over-reports a subset can never make us count tokens twice.
 */
export function usageFromProvider(usage: OpenAI.CompletionUsage): TokenUsage {
  const promptTokens = nonNegative(usage.prompt_tokens);
  const completionTokens = nonNegative(usage.completion_tokens);
  return {
    promptTokens,
    cachedTokens: Math.min(nonNegative(usage.prompt_tokens_details?.cached_tokens), promptTokens),
    completionTokens,
    reasoningTokens: Math.min(
      nonNegative(usage.completion_tokens_details?.reasoning_tokens),
      completionTokens,
    ),
  };
}

type Message = { role: string; content?: unknown };

/** Estimates usage with a tokenizer when a provider returns none; the row is marked `estimated`. */
export function estimateUsage(messages: readonly Message[], completionText: string): TokenUsage {
  // ~3 tokens of framing per message, as OpenAI's chat format adds.
  const prompt = messages.reduce((sum, m) => sum + 3 + countTokens(textOf(m.content)), 3);
  return {
    promptTokens: prompt,
    cachedTokens: 0,
    completionTokens: countTokens(completionText),
    reasoningTokens: 0,
  };
}

function textOf(content: unknown): string {
  if (typeof content === "string") return content;
  if (Array.isArray(content)) {
    return content
      .map((part) => (part && typeof part === "object" && "text" in part ? String(part.text) : ""))
      .join("");
  }
  return "";
}

function nonNegative(value: number | undefined | null): number {
  return Number.isInteger(value) && (value as number) > 0 ? (value as number) : 0;
}
