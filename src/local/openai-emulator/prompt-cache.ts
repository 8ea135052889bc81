import { createHash } from "node:crypto";

const MAX_SEEN_PROMPTS = 10_000;

/**
 * OpenAI's automatic prompt caching, as billed: a prompt of at least 1024 tokens seen before (same
 * model and messages) reports its tokens in whole 128-token blocks as cached. Remembers the most
 * recent prompts only.
 */
export function createPromptCache(): (model: string, messages: unknown[], promptTokens: number) => number {
  const seenPrompts = new Map<string, true>();
  return (model, messages, promptTokens) => {
    if (promptTokens < 1024) return 0;
    const key = createHash("sha1")
      .update(`${model}\0${JSON.stringify(messages)}`)
      .digest("base64");
    const hit = seenPrompts.delete(key); // delete + set keeps Map order as recency
    seenPrompts.set(key, true);
    if (seenPrompts.size > MAX_SEEN_PROMPTS) seenPrompts.delete(seenPrompts.keys().next().value as string);
    return hit ? Math.floor(promptTokens / 128) * 128 : 0;
  };
}
