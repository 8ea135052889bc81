import type { GenerateContentResponse } from "@google/genai";
import type OpenAI from "openai";
import { completionBase, finishReasonOf, textOf, toolCallsOf } from "./response.js";
import { geminiUsage } from "./usage.js";

type Chunk = OpenAI.ChatCompletionChunk;

/**
 * Gemini's streamed answers as OpenAI chunks: a role chunk, then text and tool-call deltas, one
 * finish chunk, and the usage chunk (choices: []). Gemini repeats usageMetadata on its chunks, the
 * last one final: the usage chunk carries the last seen, and is left out only when Gemini sent none
 * (then meterline estimates, as for any provider that omits usage).
 */
export async function* toChunks(
  stream: AsyncIterable<GenerateContentResponse>,
  model: string,
): AsyncGenerator<Chunk> {
  let base: ReturnType<typeof completionBase> | undefined;
  let last: GenerateContentResponse | undefined;
  let toolCalls = 0;
  const chunk = (
    delta: Chunk["choices"][number]["delta"],
    finish: Chunk["choices"][number]["finish_reason"] = null,
  ) =>
    ({
      ...base!,
      object: "chat.completion.chunk",
      choices: [{ index: 0, delta, finish_reason: finish }],
    }) as Chunk;
  for await (const response of stream) {
    if (!base) {
      base = completionBase(response, model);
      yield chunk({ role: "assistant", content: "" });
    }
    last = response;
    const candidate = response.candidates?.[0];
    const text = textOf(candidate);
    if (text) yield chunk({ content: text });
    const calls = toolCallsOf(candidate).map((call) => ({ index: toolCalls++, ...call }));
    if (calls.length > 0) yield chunk({ tool_calls: calls });
  }
  if (!last) return;
  yield chunk({}, finishReasonOf(last, toolCalls > 0));
  const usage = last.usageMetadata;
  if (usage) yield { ...base!, object: "chat.completion.chunk", choices: [], usage: geminiUsage(usage) };
}
