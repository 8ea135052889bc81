import type Anthropic from "@anthropic-ai/sdk";
import type OpenAI from "openai";
import { PermanentError } from "../../errors.js";
import type { ChatRequest } from "../client.js";

/** Anthropic requires max_tokens; OpenAI's default is "as many as fit", which this stands for. */
export const DEFAULT_MAX_TOKENS = 4096;

// Extended thinking budgets for OpenAI's reasoning_effort; Anthropic's minimum budget is 1024.
const THINKING_BUDGET: Record<string, number> = { low: 1024, medium: 4096, high: 16384 };
const MIN_THINKING_BUDGET = 1024;

type OpenAIMessage = OpenAI.ChatCompletionMessageParam;
type Block = Anthropic.ContentBlockParam;
type Cacheable = { cache_control?: Anthropic.CacheControlEphemeral | null };

/**
 * An OpenAI chat request as Anthropic Messages API parameters: system and developer messages become
 * `system`; user, assistant and tool messages alternate as Anthropic turns (tool results as
 * tool_result blocks in a user turn); images, tools, tool_choice, stop, sampling and reasoning
 * effort are translated. `cache_control` on a message or a text part is passed on, so a client can
 * mark a prompt prefix for Anthropic's cache. What Anthropic cannot do is refused with a 400.
 */
export function toMessageParams(request: ChatRequest): Anthropic.MessageCreateParamsNonStreaming {
  refuseUnsupported(request);
  const maxTokens = request.max_completion_tokens ?? request.max_tokens ?? DEFAULT_MAX_TOKENS;
  const system = request.messages.filter(isSystem).flatMap((m) => textBlocks(m.content, m));
  const thinking = thinkingFor(request.reasoning_effort, maxTokens);
  const tools = request.tools?.map(toTool);
  const stop = typeof request.stop === "string" ? [request.stop] : (request.stop ?? undefined);
  return {
    model: request.model,
    max_tokens: maxTokens,
    messages: toTurns(request.messages.filter((m) => !isSystem(m))),
    ...(system.length > 0 ? { system } : {}),
    ...(stop && stop.length > 0 ? { stop_sequences: stop } : {}),
    ...(request.temperature != null ? { temperature: request.temperature } : {}),
    ...(request.top_p != null ? { top_p: request.top_p } : {}),
    ...(tools && tools.length > 0 ? { tools } : {}),
    ...toolChoice(request),
    ...(thinking ? { thinking } : {}),
    ...(request.user ? { metadata: { user_id: request.user } } : {}),
  };
}

function isSystem(
  m: OpenAIMessage,
): m is OpenAI.ChatCompletionSystemMessageParam | OpenAI.ChatCompletionDeveloperMessageParam {
  return m.role === "system" || m.role === "developer";
}

function refuseUnsupported(request: ChatRequest): void {
  if (request.n != null && request.n !== 1)
    throw badRequest("n other than 1 is not supported by Anthropic models", "n");
  if (request.modalities?.some((m) => m !== "text") || request.audio)
    throw badRequest("Anthropic models answer text only", "modalities");
  const format = request.response_format?.type;
  if (format && format !== "text")
    throw badRequest(`response_format ${format} is not supported for Anthropic models`, "response_format");
}

/**
 * Extended thinking for a reasoning effort. Thinking is part of max_tokens and its budget must stay
 * below it, so the budget is cut to fit the completion cap, and dropped when under the minimum:
 * meterline never raises max_tokens, which caps what a chat can cost.
 */
function thinkingFor(effort: ChatRequest["reasoning_effort"], maxTokens: number) {
  const wanted = effort ? THINKING_BUDGET[effort] : undefined;
  if (!wanted) return undefined;
  const budget = Math.min(wanted, maxTokens - 1);
  return budget >= MIN_THINKING_BUDGET ? { type: "enabled" as const, budget_tokens: budget } : undefined;
}

/** Consecutive messages of one Anthropic role merge into one turn, as the Messages API expects. */
function toTurns(messages: readonly OpenAIMessage[]): Anthropic.MessageParam[] {
  const turns: { role: "user" | "assistant"; content: Block[] }[] = [];
  for (const m of messages) {
    const role = m.role === "assistant" ? "assistant" : "user";
    const blocks = blocksOf(m);
    if (blocks.length === 0) continue;
    const last = turns.at(-1);
    if (last?.role === role) last.content.push(...blocks);
    else turns.push({ role, content: blocks });
  }
  return turns;
}

function blocksOf(m: OpenAIMessage): Block[] {
  switch (m.role) {
    case "user":
      return typeof m.content === "string" ? textBlocks(m.content, m) : m.content.flatMap(userPart);
    case "assistant":
      return [...textBlocks(m.content ?? "", m), ...(m.tool_calls ?? []).map(toolUse)];
    case "tool":
      return [
        {
          type: "tool_result",
          tool_use_id: m.tool_call_id,
          content: typeof m.content === "string" ? m.content : m.content.map((p) => p.text).join(""),
        },
      ];
    default:
      throw badRequest(`messages with role ${m.role} are not supported for Anthropic models`, "messages");
  }
}

/** Text content as text blocks, empty text dropped (Anthropic refuses it); cache_control kept. */
function textBlocks(
  content: string | readonly ({ type: string; text?: string } & Cacheable)[] | null,
  message: object,
): Anthropic.TextBlockParam[] {
  const parts = typeof content === "string" ? [{ type: "text", text: content }] : (content ?? []);
  const blocks: Anthropic.TextBlockParam[] = parts
    .filter((p) => p.type === "text" && p.text)
    .map((p: { text?: string } & Cacheable) => ({
      type: "text",
      text: p.text ?? "",
      ...(p.cache_control ? { cache_control: p.cache_control } : {}),
    }));
  // A message-level cache_control marks the end of that message: its last block.
  const marked = (message as Cacheable).cache_control;
  const last = blocks.at(-1);
  if (marked && last) last.cache_control = marked;
  return blocks;
}

function userPart(part: OpenAI.ChatCompletionContentPart): Block[] {
  if (part.type === "text") return textBlocks([part], {});
  if (part.type === "image_url") return [imageBlock(part.image_url.url)];
  throw badRequest(`content parts of type ${part.type} are not supported for Anthropic models`, "messages");
}

const DATA_URL = /^data:(image\/(?:jpeg|png|gif|webp));base64,(.*)$/s;

/** An image part: data: URLs as base64 sources, http(s) URLs as URL sources Anthropic fetches. */
function imageBlock(url: string): Anthropic.ImageBlockParam {
  const data = DATA_URL.exec(url);
  if (data) {
    const mediaType = data[1] as Anthropic.Base64ImageSource["media_type"];
    return { type: "image", source: { type: "base64", media_type: mediaType, data: data[2] ?? "" } };
  }
  if (/^https?:\/\//i.test(url)) return { type: "image", source: { type: "url", url } };
  throw badRequest(
    "image_url must be an http(s) URL or a base64 data: URL of a JPEG, PNG, GIF or WebP image",
    "messages",
  );
}

function toolUse(call: OpenAI.ChatCompletionMessageToolCall): Anthropic.ToolUseBlockParam {
  if (call.type !== "function") throw badRequest("only function tool calls are supported", "messages");
  let input: unknown;
  try {
    input = JSON.parse(call.function.arguments || "{}");
  } catch {
    throw badRequest(`tool call ${call.id} has arguments that are not JSON`, "messages");
  }
  return { type: "tool_use", id: call.id, name: call.function.name, input };
}

function toTool(tool: OpenAI.ChatCompletionTool): Anthropic.Tool {
  if (tool.type !== "function") throw badRequest("only function tools are supported", "tools");
  const { name, description, parameters } = tool.function;
  return {
    name,
    ...(description ? { description } : {}),
    input_schema: (parameters ?? { type: "object", properties: {} }) as Anthropic.Tool.InputSchema,
  };
}

/** tool_choice and parallel_tool_calls as Anthropic's tool_choice ("required" is Anthropic's "any"). */
function toolChoice(request: ChatRequest): { tool_choice?: Anthropic.ToolChoice } {
  const choice = request.tool_choice;
  const serial = request.parallel_tool_calls === false ? { disable_parallel_tool_use: true } : {};
  if (choice === "none") return { tool_choice: { type: "none" } };
  if (choice === "required") return { tool_choice: { type: "any", ...serial } };
  if (choice && typeof choice === "object") {
    if (choice.type !== "function") throw badRequest("tool_choice must name a function", "tool_choice");
    return { tool_choice: { type: "tool", name: choice.function.name, ...serial } };
  }
  return choice === "auto" || request.parallel_tool_calls === false
    ? { tool_choice: { type: "auto", ...serial } }
    : {};
}

function badRequest(message: string, param: string): PermanentError {
  return new PermanentError(`${message} (${param}).`, 400, "invalid_request_error", "unsupported_parameter");
}
