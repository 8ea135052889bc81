import { randomUUID } from "node:crypto";
import { countText, isObj, textOf } from "./prompt-tokens.js";

type Json = Record<string, unknown>;

/** A function call the emulated model answers with, and the completion tokens it costs. */
export type EmulatedToolCall = { id: string; name: string; arguments: string; tokens: number };

const SAMPLE: Record<string, unknown> = {
  string: "emulated",
  number: 1,
  integer: 1,
  boolean: true,
  array: [],
  object: {},
};

/**
 * The function call the emulated model makes, by the rule the Anthropic and Gemini emulators
 * follow: function tools are given and `tool_choice` forces a call ("required" or a named
 * function), or the last user message asks to "use the tool"; never with `tool_choice: "none"`.
 * Its arguments fit the function's schema. Undefined when there is no call, or when it does not fit
 * within `limit` completion tokens (the model then answers in text, cut at the limit).
 */
export function toolCallFor(body: Json, limit: number): EmulatedToolCall | undefined {
  const functions = (Array.isArray(body.tools) ? body.tools : []).flatMap((t: unknown) =>
    isObj(t) && t.type === "function" && isObj(t.function) ? [t.function] : [],
  );
  const choice = body.tool_choice;
  if (functions.length === 0 || choice === "none") return undefined;
  const named = isObj(choice) && isObj(choice.function) ? choice.function.name : undefined;
  const messages = Array.isArray(body.messages) ? body.messages : [];
  const lastUser = messages.findLast((m) => isObj(m) && m.role === "user");
  const asked = /use the tool/i.test(textOf(isObj(lastUser) ? lastUser.content : ""));
  if (choice !== "required" && named === undefined && !asked) return undefined;
  const fn = functions.find((f) => named === undefined || f.name === named);
  if (!fn) return undefined;
  const name = String(fn.name);
  const args = JSON.stringify(argumentsFor(fn.parameters));
  const tokens = countText(name) + countText(args);
  if (tokens > limit) return undefined;
  return { id: `call_${randomUUID().replaceAll("-", "").slice(0, 24)}`, name, arguments: args, tokens };
}

/** Arguments that fit a JSON schema's top-level properties: "emulated", 1, true, [] or {}. */
function argumentsFor(schema: unknown): Json {
  const properties = isObj(schema) && isObj(schema.properties) ? schema.properties : {};
  return Object.fromEntries(
    Object.entries(properties).map(([key, p]) => [key, isObj(p) ? (SAMPLE[String(p.type)] ?? null) : null]),
  );
}
