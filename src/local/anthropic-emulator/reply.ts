import { randomUUID } from "node:crypto";
import { answerFor, generate } from "../openai-emulator/answers.js";
import { countText, isObj } from "../openai-emulator/prompt-tokens.js";
import { textOf } from "./prompt.js";

type Json = Record<string, unknown>;
type Piece = { text: string; tokens: number };

type ThinkingBlock = { type: "thinking"; thinking: string; signature: string; tokens: number };
type ToolUseBlock = { type: "tool_use"; id: string; name: string; input: Json; tokens: number };
export type ReplyBlock = ThinkingBlock | { type: "text"; pieces: Piece[] } | ToolUseBlock;

export type Reply = {
  blocks: ReplyBlock[];
  stopReason: "end_turn" | "max_tokens" | "stop_sequence" | "tool_use";
  stopSequence: string | null;
  outputTokens: number;
  /** Thinking tokens (inside outputTokens) when thinking was enabled, else null. */
  thinkingTokens: number | null;
};

/**
 * The emulator's deterministic answer to a valid request, within max_tokens: thinking first when
 * enabled (at most its budget), then "Echo: " + the last user text (or tool result) cut at the first
 * stop sequence, then a tool_use block when tools are given and the last user message asks for it
 * ("use the tool") or tool_choice forces it. Whatever does not fit max_tokens is cut: stop_reason
 * max_tokens.
 */
export function replyTo(body: Json): Reply {
  const limit = body.max_tokens as number;
  const lastUser = lastUserText(body.messages);
  const blocks: ReplyBlock[] = [];
  const thinking = thinkingBlock(body, lastUser.text, limit);
  if (thinking) blocks.push(thinking);
  let left = limit - (thinking?.tokens ?? 0);

  const { text, stopSequence } = cutAtStop(
    answerFor([{ role: "user", content: lastUser.text }]),
    body.stop_sequences,
  );
  const gen = generate(text, "", left);
  if (gen.chunks.length > 0) blocks.push({ type: "text", pieces: gen.chunks });
  left -= gen.visible;
  const base = { blocks, stopSequence: null, thinkingTokens: thinking ? thinking.tokens : null };
  const outputTokens = () => limit - left;
  if (gen.truncated) return { ...base, stopReason: "max_tokens", outputTokens: outputTokens() };
  if (stopSequence !== null)
    return { ...base, stopReason: "stop_sequence", stopSequence, outputTokens: outputTokens() };

  const tool = lastUser.toolResult ? undefined : toolUseBlock(body, lastUser.text);
  if (!tool) return { ...base, stopReason: "end_turn", outputTokens: outputTokens() };
  if (tool.tokens > left) return { ...base, stopReason: "max_tokens", outputTokens: outputTokens() };
  blocks.push(tool);
  left -= tool.tokens;
  return { ...base, stopReason: "tool_use", outputTokens: outputTokens() };
}

/** The last user turn's text, or the text of its tool results when it answers a tool call. */
function lastUserText(messages: unknown): { text: string; toolResult: boolean } {
  const last = (Array.isArray(messages) ? messages : []).findLast((m) => isObj(m) && m.role === "user");
  const content = isObj(last) ? last.content : "";
  const results = Array.isArray(content) ? content.filter((b) => isObj(b) && b.type === "tool_result") : [];
  if (results.length === 0) return { text: textOf(content), toolResult: false };
  return { text: results.map((b) => textOf((b as Json).content)).join(" "), toolResult: true };
}

function cutAtStop(answer: string, stops: unknown): { text: string; stopSequence: string | null } {
  let best: { at: number; stop: string } | undefined;
  for (const stop of Array.isArray(stops) ? stops : []) {
    if (typeof stop !== "string" || stop === "") continue;
    const at = answer.indexOf(stop);
    if (at >= 0 && (!best || at < best.at)) best = { at, stop };
  }
  return best
    ? { text: answer.slice(0, best.at), stopSequence: best.stop }
    : { text: answer, stopSequence: null };
}

function thinkingBlock(body: Json, userText: string, limit: number): ThinkingBlock | undefined {
  const config = body.thinking;
  if (!isObj(config) || config.type !== "enabled") return undefined;
  const words = userText.split(/\s+/).filter(Boolean).slice(0, 40).join(" ");
  const thinking = `The user wrote: "${words}". I will echo it back, as this model always does.`;
  const tokens = Math.min(countText(thinking), config.budget_tokens as number, limit);
  return { type: "thinking", thinking, signature: `sig_${randomUUID()}`, tokens };
}

function toolUseBlock(body: Json, userText: string): ToolUseBlock | undefined {
  const tools = Array.isArray(body.tools) ? body.tools.filter(isObj) : [];
  const choice = isObj(body.tool_choice) ? body.tool_choice : { type: "auto" };
  if (tools.length === 0 || choice.type === "none") return undefined;
  const forced = choice.type === "any" || choice.type === "tool";
  if (!forced && !/use the tool/i.test(userText)) return undefined;
  const tool = (choice.type === "tool" ? tools.find((t) => t.name === choice.name) : undefined) ?? tools[0];
  if (!tool) return undefined;
  const input = inputFor(tool.input_schema, userText);
  const name = String(tool.name);
  const id = `toolu_${randomUUID().replaceAll("-", "").slice(0, 24)}`;
  return { type: "tool_use", id, name, input, tokens: countText(name + JSON.stringify(input)) };
}

/** Arguments that fit the tool's schema: strings get the user's text, other types a fixed value. */
function inputFor(schema: unknown, userText: string): Json {
  const properties = isObj(schema) && isObj(schema.properties) ? schema.properties : {};
  const sample: Record<string, unknown> = {
    string: userText.slice(0, 80),
    number: 1,
    integer: 1,
    boolean: true,
    array: [],
    object: {},
  };
  return Object.fromEntries(
    Object.entries(properties).map(([key, p]) => [key, isObj(p) ? (sample[String(p.type)] ?? null) : null]),
  );
}
