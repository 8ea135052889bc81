import type { GenerateContentResponse } from "@google/genai";
import type OpenAI from "openai";
import { completionBase, finishReasonOf, textOf, toolCallsOf } from "./response.js";
import { geminiUsage } from "./usage.js";
import type { ProviderChunk } from "../stream.js";

type Chunk = ProviderChunk;

/**
 * Gemini's streamed answers as OpenAI chunks: a role chunk, then text and tool-call deltas, one
 * finish chunk, and the usage chunk (choices: []). Gemini repeats usageMetadata on its chunks, the
 * last one final: the usage chunk carries the last seen, and is left out only when Gemini sent none
 * (then meterline estimates, as for any provider that omits usage). Each chunk carries the prompt
 * side of the latest usageMetadata as `prompt_usage`, for a stream cut before its end.
 */
export async function* toChunks(
  stream: AsyncIterable<GenerateContentResponse>,
  model: string,
): AsyncGenerator<Chunk> {
  let base: ReturnType<typeof completionBase> | undefined;
  let last: GenerateContentResponse | undefined;
  let toolCalls = 0;
  let prompt: OpenAI.CompletionUsage | undefined;
  const chunk = (
    shared: ReturnType<typeof completionBase>,
    delta: Chunk["choices"][number]["delta"],
    finish: Chunk["choices"][number]["finish_reason"] = null,
  ): Chunk => ({
    ...shared,
    object: "chat.completion.chunk",
    choices: [{ index: 0, delta, finish_reason: finish }],
    ...(prompt ? { prompt_usage: prompt } : {}),
  });
  for await (const response of stream) {
    if (response.usageMetadata)
      prompt = geminiUsage({ ...response.usageMetadata, candidatesTokenCount: 0, thoughtsTokenCount: 0 });
    if (!base) {
      base = completionBase(response, model);
      yield chunk(base, { role: "assistant", content: "" });
    }
    last = response;
    const candidate = response.candidates?.[0];
    const text = textOf(candidate);
    if (text) yield chunk(base, { content: text });
    const calls = toolCallsOf(candidate).map((call) => ({ index: toolCalls++, ...call }));
    if (calls.length > 0) yield chunk(base, { tool_calls: calls });
  }
  if (!base || !last) return;
  yield chunk(base, {}, finishReasonOf(last, toolCalls > 0));
  const usage = last.usageMetadata;
  if (usage) yield { ...base, object: "chat.completion.chunk", choices: [], usage: geminiUsage(usage) };
}
