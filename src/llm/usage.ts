import type OpenAI from "openai";
import type { TokenUsage } from "../billing/pricing/prices.js";
import { audioTokens, imageTokens } from "./media-tokens.js";
import { createTokenCounter, type TokenCounter } from "./token-counter.js";

/**
 * The OpenAI mapping of the usage taxonomy (README "Usage taxonomy"): OpenAI's `prompt_tokens` are
 * all input and its `cached_tokens` a subset of them (cache reads); `completion_tokens` are all
 * output and `reasoning_tokens` a subset. OpenAI bills no cache writes and reports none; the
 * `cache_write_tokens` extension is read from `prompt_tokens_details` because the other providers'
 * adapters answer in this same shape (their own mapping functions fill it). Subsets are clamped
 * into their parents — cache reads first, then writes into what is left — so a provider that
 * over-reports a subset can never make us count tokens twice.
 */
export function usageFromProvider(usage: OpenAI.CompletionUsage): TokenUsage {
  const promptTokens = nonNegative(usage.prompt_tokens);
  const completionTokens = nonNegative(usage.completion_tokens);
  const details = usage.prompt_tokens_details as ProviderPromptDetails | undefined;
  const cachedTokens = Math.min(nonNegative(details?.cached_tokens), promptTokens);
  return {
    promptTokens,
    cachedTokens,
    cacheWriteTokens: Math.min(nonNegative(details?.cache_write_tokens), promptTokens - cachedTokens),
    completionTokens,
    reasoningTokens: Math.min(
      nonNegative(usage.completion_tokens_details?.reasoning_tokens),
      completionTokens,
    ),
  };
}

/** OpenAI's prompt details with the cache-write extension the Anthropic and Gemini adapters add. */
type ProviderPromptDetails = OpenAI.CompletionUsage.PromptTokensDetails & { cache_write_tokens?: number };

type Message = {
  role: string;
  content?: unknown;
  name?: unknown;
  tool_calls?: unknown;
  function_call?: unknown;
  tool_call_id?: unknown;
};

/** What of a chat request a provider bills as prompt: its messages, and the tools and schema it is given. */
export type PromptRequest = {
  model?: string;
  messages: readonly Message[];
  tools?: unknown;
  functions?: unknown;
  tool_choice?: unknown;
  function_call?: unknown;
  response_format?: unknown;
};

// OpenAI renders tool definitions into the prompt as a TypeScript-like namespace wrapped in 9 tokens
// of framing; their compact JSON spells every name, description and type the rendering does, with
// more punctuation, so counting the JSON errs high.
const TOOLS_FRAMING = 9;
// Framing around a structured-output schema: small, unpublished; taken generously.
const SCHEMA_FRAMING = 8;

/**
 * Prompt tokens of a chat request, an upper bound of what OpenAI bills: 3 tokens of framing per
 * message plus its role, text, name, tool calls and tool-call id, images by the tile rule and audio
 * by its duration (media-tokens.ts), tool and function definitions and a `response_format` schema as
 * JSON, and 3 to prime the reply. Linear in the input and yielding to the event loop as it goes
 * (token-counter.ts).
 */
export async function estimatePromptTokens(request: PromptRequest, counter?: TokenCounter): Promise<number> {
  const tokens = counter ?? (await createTokenCounter());
  const json = (value: unknown) => (value == null ? 0 : tokens.count(JSON.stringify(value)));
  let sum = 3;
  for (const m of request.messages) {
    sum += 3 + (await tokens.count(m.role)) + (await tokens.count(textOf(m.content)));
    if (Array.isArray(m.content)) sum += mediaTokens(m.content, request.model);
    if (typeof m.name === "string") sum += 1 + (await tokens.count(m.name));
    if (typeof m.tool_call_id === "string") sum += await tokens.count(m.tool_call_id);
    sum += (await json(m.tool_calls)) + (await json(m.function_call));
  }
  for (const definitions of [request.tools, request.functions])
    if (Array.isArray(definitions) && definitions.length > 0)
      sum += TOOLS_FRAMING + (await json(definitions));
  if (typeof request.tool_choice === "object") sum += await json(request.tool_choice);
  if (typeof request.function_call === "object") sum += await json(request.function_call);
  const format = request.response_format as { type?: unknown } | null | undefined;
  if (format && typeof format === "object" && format.type !== "text")
    sum += SCHEMA_FRAMING + (await json(format));
  return sum;
}

/** Estimates usage with a tokenizer when a provider returns none; the row is marked `estimated`. */
export async function estimateUsage(request: PromptRequest, completionText: string): Promise<TokenUsage> {
  const counter = await createTokenCounter();
  return {
    promptTokens: await estimatePromptTokens(request, counter),
    cachedTokens: 0,
    cacheWriteTokens: 0,
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

function mediaTokens(parts: readonly unknown[], model?: string): number {
  let sum = 0;
  for (const part of parts) {
    if (!part || typeof part !== "object") continue;
    const { type } = part as { type?: unknown };
    if (type === "image_url") sum += imageTokens(part, model);
    if (type === "input_audio") sum += audioTokens(part);
  }
  return sum;
}

function nonNegative(value: number | undefined | null): number {
  return Number.isInteger(value) && (value as number) > 0 ? (value as number) : 0;
}
