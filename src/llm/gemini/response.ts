import { randomUUID } from "node:crypto";
import { FinishReason, type Candidate, type GenerateContentResponse } from "@google/genai";
import type OpenAI from "openai";
import type { ChatCompletion } from "../client.js";
import { geminiUsage } from "./usage.js";

type FinishReasonOut = OpenAI.ChatCompletion.Choice["finish_reason"];
type ToolCall = OpenAI.ChatCompletionMessageFunctionToolCall;

const FILTERED: readonly string[] = [
  FinishReason.SAFETY,
  FinishReason.RECITATION,
  FinishReason.BLOCKLIST,
  FinishReason.PROHIBITED_CONTENT,
  FinishReason.SPII,
  FinishReason.IMAGE_SAFETY,
  FinishReason.IMAGE_PROHIBITED_CONTENT,
];

/**
 * Gemini's finish reason in OpenAI's words: a function call → tool_calls (Gemini says STOP),
 * MAX_TOKENS → length, the safety and recitation family → content_filter, anything else → stop.
 * A prompt blocked before generation (promptFeedback, no candidate) is content_filter too.
 */
export function finishReasonOf(response: GenerateContentResponse, hadToolCalls: boolean): FinishReasonOut {
  const reason = response.candidates?.[0]?.finishReason;
  if (hadToolCalls) return "tool_calls";
  if (reason === FinishReason.MAX_TOKENS) return "length";
  if ((reason && FILTERED.includes(reason)) || response.promptFeedback?.blockReason) return "content_filter";
  return "stop";
}

/** The visible text of a candidate: its text parts, without thought summaries. */
export function textOf(candidate: Candidate | undefined): string {
  return (candidate?.content?.parts ?? [])
    .filter((p) => !p.thought && typeof p.text === "string")
    .map((p) => p.text)
    .join("");
}

/**
 * A candidate's function calls as OpenAI tool calls. Gemini's own call id is kept when it sends
 * one; otherwise one is made, so the tool result can name the call it answers. A thinking model's
 * thoughtSignature rides on the call as `extra_content.google.thought_signature` (the field
 * Google's own OpenAI-compatible endpoint uses), so a client that sends the message back returns it.
 */
export function toolCallsOf(candidate: Candidate | undefined): ToolCall[] {
  return (candidate?.content?.parts ?? []).flatMap((p) =>
    p.functionCall
      ? [
          {
            id: p.functionCall.id ?? `call_${randomUUID().replaceAll("-", "").slice(0, 24)}`,
            type: "function" as const,
            function: {
              name: p.functionCall.name ?? "",
              arguments: JSON.stringify(p.functionCall.args ?? {}),
            },
            ...(p.thoughtSignature
              ? { extra_content: { google: { thought_signature: p.thoughtSignature } } }
              : {}),
          },
        ]
      : [],
  );
}

/** The fields every completion and chunk of one Gemini answer share. */
export function completionBase(response: GenerateContentResponse | undefined, model: string) {
  const id = `chatcmpl-${response?.responseId ?? randomUUID().replaceAll("-", "")}`;
  return { id, created: Math.floor(Date.now() / 1000), model };
}

/** A whole Gemini answer as an OpenAI chat.completion, usage in meterline's taxonomy. */
export function toCompletion(response: GenerateContentResponse, model: string): ChatCompletion {
  const candidate = response.candidates?.[0];
  const toolCalls = toolCallsOf(candidate);
  const message: OpenAI.ChatCompletionMessage = {
    role: "assistant",
    content: textOf(candidate) || (toolCalls.length > 0 ? null : ""),
    refusal: null,
    ...(toolCalls.length > 0 ? { tool_calls: toolCalls } : {}),
  };
  return {
    ...completionBase(response, model),
    object: "chat.completion",
    choices: [
      { index: 0, message, finish_reason: finishReasonOf(response, toolCalls.length > 0), logprobs: null },
    ],
    ...(response.usageMetadata ? { usage: geminiUsage(response.usageMetadata) } : {}),
  };
}
