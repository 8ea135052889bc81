import type Anthropic from "@anthropic-ai/sdk";
import type OpenAI from "openai";
import { RetryableError } from "../../errors.js";
import type { ProviderChunk } from "../stream.js";
import { finishReason } from "./response.js";
import { anthropicUsage, type AnthropicUsageFields } from "./usage.js";

type Chunk = ProviderChunk;
type Delta = Chunk["choices"][number]["delta"];

/**
 * Anthropic's stream events as OpenAI chunks: text deltas as content, tool_use blocks and their
 * input_json_delta pieces as tool_call deltas (numbered in order of the tool blocks), message_delta's
 * stop reason as the finish chunk, and at message_stop one usage chunk (choices: []) from the usage
 * message_start and message_delta reported. Thinking is billed (inside output_tokens) but not shown.
 * The role chunk (message_start) and the finish chunk (message_delta, which may revise the input
 * counts) carry the prompt side as `prompt_usage`, for a stream cut before message_stop.
 * A stream that ends before message_stop is a provider failure, never a completion without usage,
 * unless `signal` aborted it: the SDK then ends the stream quietly, and so does this.
 */
export async function* toChunks(
  events: AsyncIterable<Anthropic.RawMessageStreamEvent>,
  signal?: AbortSignal,
): AsyncGenerator<Chunk> {
  let base = { id: "", object: "chat.completion.chunk" as const, created: 0, model: "" };
  let usage: AnthropicUsageFields = {
    input_tokens: 0,
    output_tokens: 0,
    cache_creation_input_tokens: null,
    cache_read_input_tokens: null,
  };
  const toolIndex = new Map<number, number>(); // content block index → tool_calls index
  const chunk = (delta: Delta, finish: Chunk["choices"][number]["finish_reason"] = null): Chunk => ({
    ...base,
    choices: [{ index: 0, delta, finish_reason: finish }],
  });
  for await (const event of events) {
    switch (event.type) {
      case "message_start":
        base = {
          ...base,
          id: event.message.id,
          model: event.message.model,
          created: Math.floor(Date.now() / 1000),
        };
        usage = { ...event.message.usage };
        yield { ...chunk({ role: "assistant", content: "" }), prompt_usage: promptSide(usage) };
        break;
      case "content_block_start":
        if (event.content_block.type === "tool_use") {
          const index = toolIndex.size;
          toolIndex.set(event.index, index);
          const { id, name } = event.content_block;
          yield chunk({ tool_calls: [{ index, id, type: "function", function: { name, arguments: "" } }] });
        }
        break;
      case "content_block_delta":
        if (event.delta.type === "text_delta") yield chunk({ content: event.delta.text });
        if (event.delta.type === "input_json_delta") {
          const index = toolIndex.get(event.index) ?? 0;
          yield chunk({ tool_calls: [{ index, function: { arguments: event.delta.partial_json } }] });
        }
        break;
      case "message_delta":
        usage = mergeUsage(usage, event.usage);
        yield { ...chunk({}, finishReason(event.delta.stop_reason)), prompt_usage: promptSide(usage) };
        break;
      case "message_stop":
        yield { ...base, choices: [], usage: anthropicUsage(usage) };
        return;
    }
  }
  if (!signal?.aborted) throw new RetryableError("Anthropic's stream ended before message_stop");
}

/** The input side of `usage` in meterline's taxonomy, with no output counted. */
function promptSide(usage: AnthropicUsageFields): OpenAI.CompletionUsage {
  return anthropicUsage({ ...usage, output_tokens: 0, output_tokens_details: null });
}

/** message_delta's usage is cumulative; its input and cache counts, when present, replace message_start's. */
function mergeUsage(start: AnthropicUsageFields, delta: Anthropic.MessageDeltaUsage): AnthropicUsageFields {
  return {
    input_tokens: delta.input_tokens ?? start.input_tokens,
    cache_creation_input_tokens: delta.cache_creation_input_tokens ?? start.cache_creation_input_tokens,
    cache_read_input_tokens: delta.cache_read_input_tokens ?? start.cache_read_input_tokens,
    output_tokens: delta.output_tokens,
    output_tokens_details: delta.output_tokens_details ?? start.output_tokens_details,
  };
}
