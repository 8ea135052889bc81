import { decode, decodeGenerator, encode } from "gpt-tokenizer";
import { isObj, PLAIN, textOf } from "./prompt-tokens.js";

const TOKENS_PER_CHUNK = 4;
const LOREM = "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt.";

/** Deterministic answer: "Echo: " + the first 40 words (≤ 400 chars) of the last user message. */
export function answerFor(messages: readonly unknown[]): string {
  const lastUser = messages.findLast((m) => isObj(m) && m.role === "user");
  const words = textOf(isObj(lastUser) ? lastUser.content : "")
    .split(/\s+/)
    .filter(Boolean)
    .slice(0, 40);
  if (words.length === 0) return LOREM;
  const text = `Echo: ${words.join(" ")}`;
  return text.length <= 400 ? text : Array.from(text).slice(0, 400).join("");
}

/** Filler of exactly `tokens` tokens: a long answer, for tests of completion caps. */
export function fillerAnswer(tokens: number): string {
  const lorem = encode(LOREM, PLAIN);
  const repeated = LOREM.concat(" ").repeat(Math.ceil(tokens / lorem.length) + 1);
  return decode(encode(repeated, PLAIN).slice(0, tokens));
}

const isReasoningModel = (model: string) => /^o\d/.test(model) || model.includes("reasoning");

type Chunk = { text: string; tokens: number };

/**
 * Reasoning models spend 2x the untruncated answer on hidden reasoning first, out of the same
 * max-tokens budget (as real o-series models do), so a small budget can yield empty content.
 */
export function generate(answer: string, model: string, limit: number) {
  const tokens = encode(answer, PLAIN);
  const reasoning = isReasoningModel(model) ? Math.min(2 * tokens.length, limit) : 0;
  const budget = limit - reasoning;
  // Decode the full token list (never a partial one: gpt-tokenizer's shared streaming TextDecoder
  // would carry a dangling byte into the next decode) and attribute each piece its token count.
  let consumed = 0;
  let attributed = 0;
  const counted = (function* () {
    for (const t of tokens) {
      consumed++;
      yield t;
    }
  })();
  const pieces: Chunk[] = [];
  for (const text of decodeGenerator(counted)) {
    pieces.push({ text, tokens: consumed - attributed });
    attributed = consumed;
  }
  const chunks: Chunk[] = [];
  let visible = 0;
  for (const p of pieces) {
    if (visible + p.tokens > budget) break;
    visible += p.tokens;
    const last = chunks.at(-1);
    if (last && last.tokens < TOKENS_PER_CHUNK) {
      last.text += p.text;
      last.tokens += p.tokens;
    } else chunks.push({ ...p });
  }
  return { chunks, visible, reasoning, truncated: visible < tokens.length };
}
