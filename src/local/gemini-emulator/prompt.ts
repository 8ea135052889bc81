import { createHash } from "node:crypto";
import { imageSizeOfDataUrl } from "../../llm/image-size.js";
import { countText, isObj } from "../openai-emulator/prompt-tokens.js";

type Json = Record<string, unknown>;

// The emulator counts with gpt-tokenizer, not Gemini's tokenizer: deterministic and close enough;
// what matters is that it reports Gemini's own usage fields.

/** Gemini bills an image as 258 tokens per 768×768 tile, or 258 when both sides are ≤ 384 px. */
function imageTokens(part: Json): number {
  const blob = isObj(part.inlineData) ? part.inlineData : undefined;
  const size =
    blob && typeof blob.data === "string"
      ? imageSizeOfDataUrl(`data:${String(blob.mimeType)};base64,${blob.data}`)
      : undefined;
  if (!size || (size.width <= 384 && size.height <= 384)) return 258;
  return 258 * Math.ceil(size.width / 768) * Math.ceil(size.height / 768);
}

function partTokens(part: unknown): number {
  if (!isObj(part)) return 0;
  if (typeof part.text === "string") return countText(part.text);
  if (part.inlineData || part.fileData) return imageTokens(part);
  if (isObj(part.functionCall)) return countText(JSON.stringify(part.functionCall));
  if (isObj(part.functionResponse)) return countText(JSON.stringify(part.functionResponse));
  return 0;
}

/** A content's tokens: its parts plus 2 for the turn's role markers. */
export function contentTokens(content: unknown): number {
  const parts = isObj(content) && Array.isArray(content.parts) ? content.parts : [];
  return 2 + parts.reduce((n: number, p) => n + partTokens(p), 0);
}

/**
 * The prompt as cacheable segments, in order: the system instruction with the tools (what a
 * request's prefix starts with), then each content. Each has its tokens and a hash of the prefix
 * ending with it.
 */
export function promptSegments(body: Json): { tokens: number; prefixHash: string }[] {
  const head = { systemInstruction: body.systemInstruction, tools: body.tools };
  const system = isObj(body.systemInstruction) ? contentTokens(body.systemInstruction) : 0;
  const tools = body.tools === undefined ? 0 : countText(JSON.stringify(body.tools));
  const segments = [{ value: head, tokens: system + tools }];
  for (const c of Array.isArray(body.contents) ? body.contents : [])
    segments.push({ value: c, tokens: contentTokens(c) });
  const hash = createHash("sha1");
  return segments.map(({ value, tokens }) => {
    hash.update(JSON.stringify(value ?? null));
    return { tokens, prefixHash: hash.copy().digest("base64") };
  });
}

const MAX_SEEN_PREFIXES = 50_000;

/**
 * Gemini 2.5's implicit caching: a request whose prompt starts with a prefix already sent (same
 * model) reads that prefix from cache, when it is at least the model's minimum (1024 tokens on
 * Flash, 4096 on Pro), and reports it as cachedContentTokenCount — part of promptTokenCount. There
 * is no write charge. Remembers the most recent prefixes only.
 */
export function createImplicitCache(): (
  model: string,
  body: Json,
) => { promptTokens: number; cached: number } {
  const seen = new Map<string, true>();
  return (model, body) => {
    const minimum = model.includes("pro") ? 4096 : 1024;
    let total = 0;
    let cached = 0;
    for (const { tokens, prefixHash } of promptSegments(body)) {
      total += tokens;
      const key = `${model}\0${prefixHash}`;
      if (seen.delete(key) && total >= minimum) cached = total;
      seen.set(key, true);
    }
    while (seen.size > MAX_SEEN_PREFIXES) seen.delete(seen.keys().next().value as string);
    return { promptTokens: total, cached };
  };
}
