import type OpenAI from "openai";
import type { TokenUsage } from "../billing/prices.js";
import { createTokenCounter, type TokenCounter } from "./token-counter.js";

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
 * message plus its role, content and name, and 3 to prime the reply. Linear in the input and
 * yielding to the event loop as it goes (token-counter.ts).
 */
export async function estimatePromptTokens(
  messages: readonly Message[],
  counter?: TokenCounter,
): Promise<number> {
  const tokens = counter ?? (await createTokenCounter());
  let sum = 3;
  for (const m of messages) {
    sum += 3 + (await tokens.count(m.role)) + (await tokens.count(textOf(m.content)));
    if (typeof m.name === "string") sum += 1 + (await tokens.count(m.name));
  }
  return sum;
}

/** Estimates usage with a tokenizer when a provider returns none; the row is marked `estimated`. */
export async function estimateUsage(
  messages: readonly Message[],
  completionText: string,
): Promise<TokenUsage> {
  const counter = await createTokenCounter();
  return {
    promptTokens: await estimatePromptTokens(messages, counter),
    cachedTokens: 0,
    completionTokens: await counter.count(completionText),
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
