import { createHash } from "node:crypto";
import { imageSizeOfDataUrl } from "../../llm/image-size.js";
import { countText, isObj } from "../openai-emulator/prompt-tokens.js";

// The emulator stands in for Anthropic: prompts are counted with gpt-tokenizer (Anthropic's
// tokenizer is not public; the counts are deterministic, which is what the tests need), in
// Anthropic's order — tools, then system, then messages — so a cache prefix can be measured.

type Json = Record<string, unknown>;

/** Anthropic's minimum cacheable prefix for Sonnet and Opus models; shorter prefixes are not cached. */
export const MIN_CACHEABLE_TOKENS = 1024;
// The system prompt Anthropic adds for tool use (Claude 4 models): auto/none, and any/tool.
const TOOL_PROMPT = { auto: 346, forced: 313 };
const MAX_IMAGE_TOKENS = 1600;

/** One piece of the prompt, in order: its tokens, and whether it ends a cache breakpoint. */
type Segment = { tokens: number; breakpoint: boolean; source: unknown };

/** A prompt's tokens, and the prefix up to its last cache_control breakpoint (0 when none or too short). */
export function measurePrompt(body: Json): { total: number; cacheable: number; cacheKey: string } {
  const segments = segmentsOf(body);
  const total = segments.reduce((n, s) => n + s.tokens, 0);
  const end = segments.findLastIndex((s) => s.breakpoint) + 1;
  const prefix = segments.slice(0, end);
  const prefixTokens = prefix.reduce((n, s) => n + s.tokens, 0);
  const cacheable = prefixTokens >= MIN_CACHEABLE_TOKENS ? prefixTokens : 0;
  const cacheKey = createHash("sha1")
    .update(`${String(body.model)}\0${JSON.stringify(prefix.map((s) => s.source))}`)
    .digest("base64");
  return { total, cacheable, cacheKey };
}

function segmentsOf(body: Json): Segment[] {
  const segments: Segment[] = [];
  const tools = Array.isArray(body.tools) ? body.tools.filter(isObj) : [];
  const choice = isObj(body.tool_choice) ? body.tool_choice.type : undefined;
  if (tools.length > 0)
    segments.push({
      tokens: choice === "any" || choice === "tool" ? TOOL_PROMPT.forced : TOOL_PROMPT.auto,
      breakpoint: false,
      source: "tools",
    });
  for (const tool of tools)
    segments.push(segment(tool, countText(JSON.stringify(withoutCacheControl(tool)))));
  if (typeof body.system === "string")
    segments.push({ tokens: countText(body.system), breakpoint: false, source: body.system });
  for (const block of Array.isArray(body.system) ? body.system.filter(isObj) : [])
    segments.push(blockSegment(block));
  for (const m of Array.isArray(body.messages) ? body.messages.filter(isObj) : []) {
    segments.push({ tokens: 3 + countText(String(m.role)), breakpoint: false, source: m.role });
    if (typeof m.content === "string")
      segments.push({ tokens: countText(m.content), breakpoint: false, source: m.content });
    for (const block of Array.isArray(m.content) ? m.content.filter(isObj) : [])
      segments.push(blockSegment(block));
  }
  return segments;
}

function blockSegment(block: Json): Segment {
  return segment(block, blockTokens(block));
}

function segment(source: Json, tokens: number): Segment {
  return { tokens, breakpoint: isObj(source.cache_control), source: withoutCacheControl(source) };
}

function withoutCacheControl(source: Json): Json {
  const { cache_control: _ignored, ...rest } = source;
  return rest;
}

/** A content block's tokens: text, an image by Anthropic's (width × height) / 750 rule, tool use and results. */
function blockTokens(block: Json): number {
  switch (block.type) {
    case "text":
      return countText(String(block.text ?? ""));
    case "image":
      return imageTokens(block.source);
    case "tool_use":
      return countText(`${String(block.name)}${JSON.stringify(block.input ?? {})}`);
    case "tool_result":
      return countText(textOf(block.content));
    case "thinking":
      return countText(String(block.thinking ?? ""));
    default:
      return countText(JSON.stringify(block));
  }
}

/** The text of string content or of its text blocks (one line each). */
export function textOf(content: unknown): string {
  if (typeof content === "string") return content;
  if (!Array.isArray(content)) return "";
  return content
    .flatMap((b: unknown) => (isObj(b) && b.type === "text" ? [String(b.text ?? "")] : []))
    .join("\n");
}

// Anthropic scales an image so its long edge is at most 1568 px; a URL image is not fetched and is
// counted as the largest image.
function imageTokens(source: unknown): number {
  if (!isObj(source) || source.type !== "base64") return MAX_IMAGE_TOKENS;
  const size = imageSizeOfDataUrl(`data:${String(source.media_type)};base64,${String(source.data)}`);
  if (!size) return MAX_IMAGE_TOKENS;
  const scale = Math.min(1, 1568 / Math.max(size.width, size.height));
  return Math.min(MAX_IMAGE_TOKENS, Math.ceil((size.width * scale * size.height * scale) / 750));
}
