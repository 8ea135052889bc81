import {
  FunctionCallingConfigMode,
  type Content,
  type GenerateContentConfig,
  type GenerateContentParameters,
  type Part,
  type ToolConfig,
} from "@google/genai";
import type OpenAI from "openai";
import { PermanentError } from "../../errors.js";
import type { ChatRequest } from "../client.js";

type Message = OpenAI.ChatCompletionMessageParam;

/** A request Gemini cannot serve as asked: the customer's 400, before anything is paid. */
const unsupported = (message: string) =>
  new PermanentError(message, 400, "invalid_request_error", "unsupported");

/**
 * Thinking budgets (tokens) for OpenAI's `reasoning_effort`. Gemini 2.5 thinks by default ("dynamic"
 * budget); an effort sets a fixed budget, "none"/"minimal" the least the model accepts (0 on Flash).
 */
const THINKING_BUDGET: Record<string, number> = {
  none: 0,
  minimal: 0,
  low: 1_024,
  medium: 8_192,
  high: 24_576,
  xhigh: 32_768,
  max: 32_768,
};

/**
 * An OpenAI chat request as Gemini `generateContent` parameters: system/developer messages become
 * the systemInstruction, assistant turns role "model", tool calls and results functionCall /
 * functionResponse parts, and the sampling options their Gemini names.
 */
export function toGeminiRequest(request: ChatRequest): GenerateContentParameters {
  if ((request.n ?? 1) !== 1) throw unsupported("Gemini models answer one choice: n must be 1.");
  const system = request.messages.filter((m) => m.role === "system" || m.role === "developer");
  const config: GenerateContentConfig = {
    ...(system.length > 0
      ? { systemInstruction: { parts: system.map((m) => ({ text: textOf(m.content) })) } }
      : {}),
    ...samplingConfig(request),
    ...toolsConfig(request),
    ...formatConfig(request.response_format),
  };
  return { model: request.model, contents: toContents(request.messages), config };
}

/** Max tokens, stop sequences, sampling and thinking, under Gemini's names. */
function samplingConfig(r: ChatRequest): GenerateContentConfig {
  const maxTokens = r.max_completion_tokens ?? r.max_tokens;
  const stop = r.stop == null ? [] : typeof r.stop === "string" ? [r.stop] : r.stop;
  const budget = r.reasoning_effort ? THINKING_BUDGET[r.reasoning_effort] : undefined;
  const config: GenerateContentConfig = {
    maxOutputTokens: maxTokens ?? undefined,
    stopSequences: stop.length > 0 ? stop : undefined,
    temperature: r.temperature ?? undefined,
    topP: r.top_p ?? undefined,
    presencePenalty: r.presence_penalty ?? undefined,
    frequencyPenalty: r.frequency_penalty ?? undefined,
    seed: r.seed ?? undefined,
    thinkingConfig: budget === undefined ? undefined : { thinkingBudget: budget },
  };
  return Object.fromEntries(Object.entries(config).filter(([, v]) => v !== undefined));
}

/** OpenAI function tools → one Gemini tool of functionDeclarations; tool_choice → toolConfig. */
function toolsConfig(r: ChatRequest): GenerateContentConfig {
  if (!r.tools?.length) return {};
  const functionDeclarations = r.tools.map((t) => {
    if (t.type !== "function") throw unsupported("Gemini models take function tools only.");
    const { name, description, parameters } = t.function;
    return { name, description, ...(parameters ? { parametersJsonSchema: parameters } : {}) };
  });
  const toolConfig = toToolConfig(r.tool_choice);
  return { tools: [{ functionDeclarations }], ...(toolConfig ? { toolConfig } : {}) };
}

function toToolConfig(choice: ChatRequest["tool_choice"]): ToolConfig | undefined {
  if (choice === undefined || choice === "auto") return undefined;
  if (choice === "none") return { functionCallingConfig: { mode: FunctionCallingConfigMode.NONE } };
  if (choice === "required") return { functionCallingConfig: { mode: FunctionCallingConfigMode.ANY } };
  if (choice.type === "function") {
    const allowedFunctionNames = [choice.function.name];
    return { functionCallingConfig: { mode: FunctionCallingConfigMode.ANY, allowedFunctionNames } };
  }
  if (choice.type === "allowed_tools") {
    const { mode, tools } = choice.allowed_tools;
    const names = tools.map((t) => (t as { function?: { name?: string } }).function?.name).filter(Boolean);
    const gemini = mode === "required" ? FunctionCallingConfigMode.ANY : FunctionCallingConfigMode.AUTO;
    return { functionCallingConfig: { mode: gemini, allowedFunctionNames: names as string[] } };
  }
  throw unsupported("Gemini models take function tools only.");
}

/** response_format → a JSON answer, with its schema when one is given. */
function formatConfig(format: ChatRequest["response_format"]): GenerateContentConfig {
  if (!format || format.type === "text") return {};
  if (format.type === "json_object") return { responseMimeType: "application/json" };
  return { responseMimeType: "application/json", responseJsonSchema: format.json_schema.schema ?? {} };
}

/**
 * The conversation as Gemini contents. Gemini has two roles (user, model); tool results are user
 * turns of functionResponse parts, named after the call they answer (OpenAI names only its id).
 * Consecutive turns of one role are merged, as Gemini expects parallel results in one turn.
 */
export function toContents(messages: readonly Message[]): Content[] {
  const callNames = new Map<string, string>();
  const contents: Content[] = [];
  const push = (role: "user" | "model", parts: Part[]) => {
    const last = contents.at(-1);
    if (last?.role === role) last.parts?.push(...parts);
    else contents.push({ role, parts });
  };
  for (const m of messages) {
    if (m.role === "user") push("user", userParts(m.content));
    else if (m.role === "assistant") push("model", assistantParts(m, callNames));
    else if (m.role === "tool") {
      const name = callNames.get(m.tool_call_id);
      if (!name) throw unsupported(`No assistant tool call has the id '${m.tool_call_id}'.`);
      push("user", [
        { functionResponse: { id: m.tool_call_id, name, response: { output: textOf(m.content) } } },
      ]);
    } else if (m.role === "function") {
      push("user", [{ functionResponse: { name: m.name, response: { output: m.content ?? "" } } }]);
    }
  }
  return contents;
}

function assistantParts(
  m: OpenAI.ChatCompletionAssistantMessageParam,
  callNames: Map<string, string>,
): Part[] {
  const text = textOf(m.content);
  const parts: Part[] = text ? [{ text }] : [];
  for (const call of m.tool_calls ?? []) {
    if (call.type !== "function") throw unsupported("Gemini models take function tools only.");
    callNames.set(call.id, call.function.name);
    parts.push({
      functionCall: { id: call.id, name: call.function.name, args: parseArguments(call.function.arguments) },
      ...thoughtSignatureOf(call),
    });
  }
  if (m.function_call) {
    parts.push({
      functionCall: { name: m.function_call.name, args: parseArguments(m.function_call.arguments) },
    });
  }
  return parts.length > 0 ? parts : [{ text: "" }];
}

/** The thoughtSignature a Gemini tool call carried out (response.ts), to hand back with the call. */
function thoughtSignatureOf(call: object): { thoughtSignature?: string } {
  const extra = (call as { extra_content?: { google?: { thought_signature?: unknown } } }).extra_content;
  const signature = extra?.google?.thought_signature;
  return typeof signature === "string" ? { thoughtSignature: signature } : {};
}

function parseArguments(json: string): Record<string, unknown> {
  try {
    const args: unknown = JSON.parse(json || "{}");
    if (typeof args === "object" && args !== null && !Array.isArray(args))
      return args as Record<string, unknown>;
  } catch {
    // answered below
  }
  throw unsupported("A tool call's arguments must be a JSON object for Gemini models.");
}

/**
 * User content parts. Images: a `data:` URL is sent inline (inlineData); an http(s) URL is passed as
 * fileData for Google to fetch itself — meterline fetches nothing on a customer's behalf.
 */
function userParts(content: OpenAI.ChatCompletionUserMessageParam["content"]): Part[] {
  if (typeof content === "string") return [{ text: content }];
  return content.map((part): Part => {
    if (part.type === "text") return { text: part.text };
    if (part.type === "image_url") return imagePart(part.image_url.url);
    throw unsupported(`Gemini models do not take '${part.type}' content through meterline.`);
  });
}

function imagePart(url: string): Part {
  const data = /^data:([^;,]+);base64,(.*)$/s.exec(url);
  if (data) return { inlineData: { mimeType: data[1], data: data[2] } };
  if (/^https?:\/\//i.test(url)) return { fileData: { fileUri: url, mimeType: mimeTypeOf(url) } };
  throw unsupported("An image must be a data: URL or an http(s) URL.");
}

const MIME_BY_EXTENSION: Record<string, string> = {
  png: "image/png",
  gif: "image/gif",
  webp: "image/webp",
  heic: "image/heic",
  heif: "image/heif",
};

/** An image URL's MIME type by its extension (Gemini requires one on fileData); JPEG otherwise. */
function mimeTypeOf(url: string): string {
  const ext = /\.([a-z0-9]+)(?:[?#]|$)/i.exec(new URL(url).pathname)?.[1]?.toLowerCase() ?? "";
  return MIME_BY_EXTENSION[ext] ?? "image/jpeg";
}

/** The text of a message content (string or text parts). */
function textOf(content: string | readonly { type: string; text?: string }[] | null | undefined): string {
  if (typeof content === "string") return content;
  return (content ?? []).map((p) => (p.type === "text" ? (p.text ?? "") : "")).join("");
}
