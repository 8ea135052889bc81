import type { ServerResponse } from "node:http";
import type { Reply, ReplyBlock } from "./reply.js";
import type { AnthropicReportedUsage } from "./types.js";

// Anthropic's message object and event stream for a reply, as the emulator sends them.

type Json = Record<string, unknown>;

/** A prompt's tokens in Anthropic's fields: input_tokens excludes the cache writes and reads. */
export type PromptUsage = {
  input_tokens: number;
  cache_creation_input_tokens: number;
  cache_read_input_tokens: number;
};

export type StreamedReply = {
  message: Json; // id, type, role, model
  usage: PromptUsage;
  reply: Reply;
  requestId: string;
  cutAfter: number;
};

/** The finished message (non-streaming answer), and the usage it reports. */
export function messageBody(message: Json, usage: PromptUsage, reply: Reply) {
  const content = reply.blocks.map(finishedBlock);
  return { ...message, content, ...stopOf(reply), usage: fullUsage(usage, reply), ...NULL_FIELDS };
}

/**
 * Writes message_start, each block's content_block_start / deltas / stop, message_delta with the
 * final usage and message_stop. `beforeDelta` may stop the stream (client gone, a cut fault):
 * then it returns false and leaves the response to the caller. `reported` sees each usage sent.
 */
export async function writeEventStream(
  res: ServerResponse,
  s: StreamedReply,
  hooks: {
    beforeDelta(): Promise<boolean>;
    sent(tokens: number): void;
    reported(usage: AnthropicReportedUsage): void;
  },
): Promise<boolean> {
  const send = (type: string, data: Json) =>
    res.write(`event: ${type}\ndata: ${JSON.stringify({ type, ...data })}\n\n`);
  res.writeHead(200, {
    "content-type": "text/event-stream",
    "cache-control": "no-cache",
    "request-id": s.requestId,
  });
  const usage = { ...s.usage, output_tokens: 1, ...NULL_USAGE };
  const message = {
    ...s.message,
    content: [],
    stop_reason: null,
    stop_sequence: null,
    usage,
    ...NULL_FIELDS,
  };
  send("message_start", { message });
  hooks.reported(usage);
  send("ping", {});
  for (const [index, block] of s.reply.blocks.entries()) {
    send("content_block_start", { index, content_block: emptyBlock(block) });
    for (const [delta, tokens] of deltasOf(block)) {
      if (!(await hooks.beforeDelta())) return false;
      send("content_block_delta", { index, delta });
      hooks.sent(tokens);
    }
    send("content_block_stop", { index });
  }
  const final = fullUsage(s.usage, s.reply);
  send("message_delta", { delta: stopOf(s.reply), usage: final });
  hooks.reported(final);
  send("message_stop", {});
  res.end();
  return true;
}

// Fields of Anthropic's message and usage objects the emulator does not model.
const NULL_FIELDS = { container: null, diagnostics: null, stop_details: null };
const NULL_USAGE = {
  cache_creation: null,
  inference_geo: null,
  server_tool_use: null,
  service_tier: "standard",
  speed: null,
};

function stopOf(reply: Reply) {
  return { stop_reason: reply.stopReason, stop_sequence: reply.stopSequence };
}

function fullUsage(usage: PromptUsage, reply: Reply) {
  const details = reply.thinkingTokens === null ? null : { thinking_tokens: reply.thinkingTokens };
  return { ...usage, output_tokens: reply.outputTokens, output_tokens_details: details, ...NULL_USAGE };
}

function finishedBlock(block: ReplyBlock): Json {
  if (block.type === "text")
    return { type: "text", text: block.pieces.map((p) => p.text).join(""), citations: null };
  if (block.type === "thinking")
    return { type: "thinking", thinking: block.thinking, signature: block.signature };
  return { type: "tool_use", id: block.id, name: block.name, input: block.input };
}

function emptyBlock(block: ReplyBlock): Json {
  if (block.type === "text") return { type: "text", text: "", citations: null };
  if (block.type === "thinking") return { type: "thinking", thinking: "", signature: "" };
  return { type: "tool_use", id: block.id, name: block.name, input: {} };
}

/** A block's deltas and the output tokens each carries (tool JSON is sent in two pieces). */
function deltasOf(block: ReplyBlock): [Json, number][] {
  if (block.type === "text") return block.pieces.map((p) => [{ type: "text_delta", text: p.text }, p.tokens]);
  if (block.type === "thinking")
    return [
      [{ type: "thinking_delta", thinking: block.thinking }, block.tokens],
      [{ type: "signature_delta", signature: block.signature }, 0],
    ];
  const json = JSON.stringify(block.input);
  const half = Math.ceil(json.length / 2);
  const first = Math.ceil(block.tokens / 2);
  return [
    [{ type: "input_json_delta", partial_json: json.slice(0, half) }, first],
    [{ type: "input_json_delta", partial_json: json.slice(half) }, block.tokens - first],
  ];
}
