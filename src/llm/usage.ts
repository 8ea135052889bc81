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

type Message = { role: string; content?: unknown; name?: unknown };

/**
 * Prompt tokens of a chat request as OpenAI's chat format counts them: 3 tokens of framing per
 * message plus its role, content and name, and 3 to prime the reply.
 */
export function estimatePromptTokens(messages: readonly Message[]): number {
  return messages.reduce(
    (sum, m) =>
      sum +
      3 +
      countPlain(m.role) +
      countPlain(textOf(m.content)) +
      (typeof m.name === "string" ? 1 + countPlain(m.name) : 0),
    3,
  );
}

/** Estimates usage with a tokenizer when a provider returns none; the row is marked `estimated`. */
export function estimateUsage(messages: readonly Message[], completionText: string): TokenUsage {
  return {
    promptTokens: estimatePromptTokens(messages),
    cachedTokens: 0,
    completionTokens: countPlain(completionText),
    reasoningTokens: 0,
  };
}

// User text may contain "<|endoftext|>": count it as plain text instead of throwing.
const PLAIN = { disallowedSpecial: new Set<string>() };
const countPlain = (text: string) => countTokens(text, PLAIN);

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
