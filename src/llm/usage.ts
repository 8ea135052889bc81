import type OpenAI from "openai";
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
export async function estimatePromptTokens(messages: readonly Message[]): Promise<number> {
  const countPlain = await plainCounter();
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
export async function estimateUsage(
  messages: readonly Message[],
  completionText: string,
): Promise<TokenUsage> {
  const countPlain = await plainCounter();
  return {
    promptTokens: await estimatePromptTokens(messages),
    cachedTokens: 0,
    completionTokens: countPlain(completionText),
    reasoningTokens: 0,
  };
}

// The tokenizer's tables cost about 70 MB of memory and a moment to load, and most answers carry the
// provider's usage: load them on first use, once.
let counter: Promise<(text: string) => number> | undefined;
const plainCounter = () =>
  (counter ??= import("gpt-tokenizer").then(({ countTokens }) => {
    // User text may contain "<|endoftext|>": count it as plain text instead of throwing.
    const plain = { disallowedSpecial: new Set<string>() };
    return (text: string) => countTokens(text, plain);
  }));

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
