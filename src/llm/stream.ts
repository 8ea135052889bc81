import type OpenAI from "openai";
import type { ChatCompletion } from "./client.js";

export type ChatCompletionChunk = OpenAI.ChatCompletionChunk;

/**
 * A chunk as the provider adapters yield it. Anthropic (message_start) and Gemini (every chunk's
 * usageMetadata) report the prompt side of their usage before a stream ends; the adapters carry it
 * as `prompt_usage` (completion counts 0), so a stream cut before its final usage chunk still bills
 * the prompt — cache reads and writes included — as the provider counted it. Never shown to the
 * client.
 */
export type ProviderChunk = ChatCompletionChunk & { prompt_usage?: OpenAI.CompletionUsage };

/** Folds streamed chunks back into one `chat.completion`: what async polls and replays return. */
export function createChunkAccumulator() {
  let first: ChatCompletionChunk | undefined;
  let content = "";
  let refusal: string | null = null;
  let finishReason: string | null = null;
  let usage: OpenAI.CompletionUsage | undefined;
  let promptUsage: OpenAI.CompletionUsage | undefined;
  let chunks = 0;
  return {
    add(chunk: ProviderChunk): void {
      first ??= chunk;
      chunks++;
      // The final usage chunk has no choices: read choices[0] defensively.
      const choice = chunk.choices[0];
      if (choice?.delta?.content) content += choice.delta.content;
      if (choice?.delta?.refusal) refusal = (refusal ?? "") + choice.delta.refusal;
      if (choice?.finish_reason) finishReason = choice.finish_reason;
      if (chunk.usage) usage = chunk.usage;
      if (chunk.prompt_usage) promptUsage = chunk.prompt_usage;
    },
    /** Visible text so far: what an estimate of completion tokens counts. */
    get text() {
      return content;
    },
    get usage() {
      return usage;
    },
    /** The prompt side the provider reported before its final usage, if it did (ProviderChunk). */
    get promptUsage() {
      return promptUsage;
    },
    /** Whether any content chunk was seen (the client may have seen output). */
    get started() {
      return chunks > 0;
    },
    toCompletion(fallbackModel: string): ChatCompletion {
      return {
        id: first?.id ?? "",
        object: "chat.completion",
        created: first?.created ?? Math.floor(Date.now() / 1000),
        model: first?.model ?? fallbackModel,
        choices: [
          {
            index: 0,
            message: { role: "assistant", content, refusal },
            finish_reason: (finishReason ?? "stop") as OpenAI.ChatCompletion.Choice["finish_reason"],
            logprobs: null,
          },
        ],
        ...(usage ? { usage } : {}),
      };
    },
  };
}
export type ChunkAccumulator = ReturnType<typeof createChunkAccumulator>;

/** A finished completion as the chunks a stream of it would have carried (usage chunk last, if any). */
export function chunksOf(completion: ChatCompletion): ChatCompletionChunk[] {
  const base = {
    id: completion.id,
    object: "chat.completion.chunk" as const,
    created: completion.created,
    model: completion.model,
  };
  const choice = completion.choices[0];
  const chunks: ChatCompletionChunk[] = [
    {
      ...base,
      choices: [
        {
          index: 0,
          delta: { role: "assistant", content: choice?.message.content ?? "" },
          finish_reason: null,
        },
      ],
    },
    { ...base, choices: [{ index: 0, delta: {}, finish_reason: choice?.finish_reason ?? "stop" }] },
  ];
  if (completion.usage) chunks.push({ ...base, choices: [], usage: completion.usage });
  return chunks;
}
