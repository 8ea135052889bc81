import { countTokens } from "gpt-tokenizer";
import {
  formatFunctionDefinitions,
  type ChatCompletionFunctionDefinition,
} from "gpt-tokenizer/functionCalling";
import { imageSizeOfDataUrl } from "../../llm/image-size.js";
import { textPieces } from "../../llm/text-pieces.js";

// The emulator stands in for OpenAI: it counts a prompt the way OpenAI bills it, as far as that is
// published or measured, independently of meterline's estimator (src/llm/usage.ts).

// User text may contain "<|endoftext|>" etc.; count it as plain text instead of throwing.
export const PLAIN = { disallowedSpecial: new Set<string>() };

type Json = Record<string, unknown>;
export const isObj = (v: unknown): v is Json => typeof v === "object" && v !== null && !Array.isArray(v);

/**
 * Tokens of plain text, counted piece by piece so a 300,000-character word costs linear time: exact
 * for ordinary text (pieces end where the tokenizer's own pre-tokenizer cuts), and for long runs
 * without spaces within a token per cut of what one pass would count.
 */
export function countText(text: string): number {
  let n = 0;
  for (const { piece } of textPieces(text)) n += countTokens(piece, PLAIN);
  return n;
}

export function textOf(content: unknown): string {
  if (typeof content === "string") return content;
  if (!Array.isArray(content)) return "";
  return content.map((p: unknown) => (isObj(p) && typeof p.text === "string" ? p.text : "")).join("");
}

/**
 * A chat request's prompt tokens. Messages by the OpenAI cookbook formula for gpt-4o-family chat
 * prompts: 3 tokens per message + role + content (+1 + name), +3 to prime the reply — for messages
 * without `name` this equals `encodeChat(messages, "gpt-4o").length`. Tool calls as their JSON;
 * images by OpenAI's tile rule; input audio at 10 tokens a second; tools and functions in OpenAI's
 * TypeScript-namespace rendering (+9, −4 with a system message); a json_schema as its schema's JSON.
 */
export function countPromptTokens(body: Json): number {
  const model = typeof body.model === "string" ? body.model : "";
  const messages = Array.isArray(body.messages) ? body.messages : [];
  let n = 3;
  for (const m of messages) {
    if (!isObj(m)) continue;
    n += 3 + countText(String(m.role ?? "")) + countText(textOf(m.content));
    for (const part of Array.isArray(m.content) ? m.content : []) {
      if (isObj(part) && part.type === "image_url") n += imageTokens(part.image_url, model);
      if (isObj(part) && part.type === "input_audio") n += audioTokens(part.input_audio);
    }
    if (typeof m.name === "string") n += 1 + countText(m.name);
    if (m.tool_calls !== undefined) n += countText(JSON.stringify(m.tool_calls));
  }
  const functions = [
    ...(Array.isArray(body.tools) ? body.tools.map((t: unknown) => (isObj(t) ? t.function : undefined)) : []),
    ...(Array.isArray(body.functions) ? body.functions : []),
  ].filter(isObj) as unknown as ChatCompletionFunctionDefinition[];
  if (functions.length > 0) {
    n += countText(formatFunctionDefinitions(functions)) + 9;
    if (messages.some((m) => isObj(m) && m.role === "system")) n -= 4;
  }
  const format = body.response_format;
  if (isObj(format) && isObj(format.json_schema)) {
    const { name, schema } = format.json_schema;
    n += countText(String(name ?? "")) + countText(JSON.stringify(schema ?? {}));
  }
  return n;
}

function imageTokens(image: unknown, model: string): number {
  const [base, tile] = model.startsWith("gpt-4o-mini") ? [2833, 5667] : [85, 170];
  if (!isObj(image) || image.detail === "low") return base;
  // A remote image would be fetched by OpenAI; the emulator fetches nothing and bills it as the
  // largest image auto detail can produce (2048×768 after scaling).
  let { width, height } = (typeof image.url === "string" && imageSizeOfDataUrl(image.url)) || {
    width: 2048,
    height: 768,
  };
  if (width > 2048 || height > 2048) {
    const scale = 2048 / Math.max(width, height);
    [width, height] = [width * scale, height * scale];
  }
  if (Math.min(width, height) > 768) {
    const scale = 768 / Math.min(width, height);
    [width, height] = [width * scale, height * scale];
  }
  return base + tile * Math.ceil(width / 512) * Math.ceil(height / 512);
}

function audioTokens(audio: unknown): number {
  if (!isObj(audio) || typeof audio.data !== "string") return 0;
  const bytes = Buffer.from(audio.data, "base64");
  const byteRate =
    bytes.length >= 44 && bytes.toString("ascii", 0, 4) === "RIFF" ? bytes.readUInt32LE(28) : 0;
  // A WAV says its byte rate; other formats are timed at 32 kbit/s.
  const seconds = byteRate > 0 ? bytes.readUInt32LE(40) / byteRate : bytes.length / 4000;
  return Math.ceil(seconds * 10);
}
