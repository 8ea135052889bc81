import { setImmediate as yieldToLoop } from "node:timers/promises";
import { textPieces } from "./text-pieces.js";

/**
 * Characters of one request an estimate tokenizes; beyond them each UTF-8 byte counts as a token.
 * A byte-level BPE token covers at least one byte, so that rest is an upper bound, reached in linear
 * time. 524,288 characters hold all the text of a request under the default 1 MB BODY_LIMIT and
 * more than a 128K-token context holds in most languages, so prompts a provider could serve are
 * tokenized in full; the slowest content (random CJK, emoji, base64) costs a few seconds of CPU at
 * worst, spread over turns of a few milliseconds.
 */
export const TOKENIZE_BUDGET_CHARS = 524_288;
// Longest stretch of tokenizing between two yields: a piece of the slowest text takes a few
// milliseconds, so a turn ends a little past this and the event loop never waits much longer.
const SLICE_MS = 5;

export interface TokenCounter {
  /** Tokens of plain text: exact, plus one per hard cut (text-pieces.ts), or bytes past the budget. */
  count(text: string): Promise<number>;
}

/**
 * One counter per estimate: it shares the budget and the time slice across every string of the
 * request, so many small messages yield as often as one long one.
 */
export async function createTokenCounter(budgetChars = TOKENIZE_BUDGET_CHARS): Promise<TokenCounter> {
  const countPlain = await plainCounter();
  let left = budgetChars;
  let sliceStart = performance.now();
  const pause = async () => {
    if (performance.now() - sliceStart < SLICE_MS) return;
    await yieldToLoop();
    sliceStart = performance.now();
  };
  return {
    async count(text) {
      if (text.length === 0) return 0;
      let tokens = 0;
      let offset = 0;
      for (const { piece, hardCut } of textPieces(text.length > left ? text.slice(0, left) : text)) {
        tokens += countPlain(piece) + (hardCut ? 1 : 0);
        offset += piece.length;
        await pause();
      }
      left -= offset;
      if (offset < text.length) tokens += Buffer.byteLength(text.slice(offset), "utf8");
      await pause();
      return tokens;
    },
  };
}

// The tokenizer's tables cost about 70 MB of memory and most of a second to load: once per process,
// at boot (loadTokenizer) in the web and worker, else on first use.
let counter: Promise<(text: string) => number> | undefined;
const plainCounter = () =>
  (counter ??= import("gpt-tokenizer").then(({ countTokens, setMergeCacheSize }) => {
    // Its merge cache (100,000 words) evicts by deleting a Map's oldest key, which slows as deleted
    // slots pile up, and churns the old generation: without it random text counts 2–4× faster with
    // shorter GC pauses, and English no slower.
    setMergeCacheSize(0);
    // User text may contain "<|endoftext|>": count it as plain text instead of throwing.
    const plain = { disallowedSpecial: new Set<string>() };
    return (text: string) => countTokens(text, plain);
  }));

/**
 * Loads the tokenizer now: loading blocks the event loop for most of a second, so processes that
 * may estimate do it at boot rather than inside their first request.
 */
export async function loadTokenizer(): Promise<void> {
  await plainCounter();
}
