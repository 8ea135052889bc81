import { encode } from "gpt-tokenizer";
import { answerFor, generate } from "../openai-emulator/answers.js";
import { countText, isObj, PLAIN } from "../openai-emulator/prompt-tokens.js";

type Json = Record<string, unknown>;
type Chunk = { text: string; tokens: number };

/** What the emulated model produces: text chunks or function calls, thinking, and why it stopped. */
export type GeminiAnswer = {
  chunks: Chunk[];
  functionCalls: { name: string; args: Json }[];
  thoughts: number;
  candidates: number;
  finishReason: "STOP" | "MAX_TOKENS";
};

const partsOf = (content: unknown): Json[] =>
  isObj(content) && Array.isArray(content.parts) ? content.parts.filter(isObj) : [];
const textOf = (content: unknown) =>
  partsOf(content)
    .map((p) => (typeof p.text === "string" ? p.text : ""))
    .join("");

/**
 * The deterministic answer to a generateContent body:
 * - a function call when tools are declared and calling is not NONE, and either the mode is ANY or
 *   the last user text asks to "use the tool" (the first allowed function, arguments made from its
 *   schema);
 * - after a tool result: "Tool said: " and the result;
 * - otherwise "Echo: " and the last user text (as the OpenAI emulator), cut at the first stop
 *   sequence, within maxOutputTokens.
 * With a thinkingConfig (budget not 0) the model first thinks twice the answer's tokens (at most the
 * budget), out of the same maxOutputTokens, as Gemini 2.5 does.
 */
export function answerTo(body: Json): GeminiAnswer {
  const config = isObj(body.generationConfig) ? body.generationConfig : {};
  const limit = typeof config.maxOutputTokens === "number" ? config.maxOutputTokens : Infinity;
  const call = functionCallFor(body);
  const text = call ? "" : stopAt(textAnswer(body), config.stopSequences);
  const answerTokens = call ? countText(JSON.stringify(call)) : encode(text, PLAIN).length;
  const thoughts = Math.min(thinkingBudget(config.thinkingConfig), 2 * answerTokens, limit);
  if (call && answerTokens <= limit - thoughts) {
    return { chunks: [], functionCalls: [call], thoughts, candidates: answerTokens, finishReason: "STOP" };
  }
  const gen = generate(call ? "" : text, "", limit - thoughts);
  return {
    chunks: gen.chunks,
    functionCalls: [],
    thoughts,
    candidates: gen.visible,
    finishReason: gen.truncated || call ? "MAX_TOKENS" : "STOP",
  };
}

function textAnswer(body: Json): string {
  const contents = Array.isArray(body.contents) ? body.contents : [];
  const last = contents.at(-1);
  const results = partsOf(last).flatMap((p) =>
    isObj(p.functionResponse) ? [p.functionResponse.response] : [],
  );
  if (results.length > 0) return `Tool said: ${JSON.stringify(results.length === 1 ? results[0] : results)}`;
  const lastUser = contents.findLast((c) => isObj(c) && c.role === "user" && textOf(c) !== "");
  return answerFor([{ role: "user", content: textOf(lastUser) }]);
}

function functionCallFor(body: Json): { name: string; args: Json } | undefined {
  const declarations = (Array.isArray(body.tools) ? body.tools : []).flatMap((t) =>
    isObj(t) && Array.isArray(t.functionDeclarations) ? t.functionDeclarations.filter(isObj) : [],
  );
  const calling =
    isObj(body.toolConfig) && isObj(body.toolConfig.functionCallingConfig)
      ? body.toolConfig.functionCallingConfig
      : {};
  const mode = typeof calling.mode === "string" ? calling.mode : "AUTO";
  const allowed = Array.isArray(calling.allowedFunctionNames) ? calling.allowedFunctionNames : undefined;
  const fn = declarations.find((d) => !allowed || allowed.includes(d.name));
  if (!fn || mode === "NONE") return undefined;
  const contents = Array.isArray(body.contents) ? body.contents : [];
  const last = contents.at(-1);
  const asked = isObj(last) && last.role === "user" && /use the tool/i.test(textOf(last));
  if (mode !== "ANY" && !asked) return undefined;
  return { name: String(fn.name), args: argsFor(fn.parametersJsonSchema ?? fn.parameters) };
}

/** Arguments that fit a JSON schema's top-level properties: "emulated", 1, true, [] or {}. */
function argsFor(schema: unknown): Json {
  const properties = isObj(schema) && isObj(schema.properties) ? schema.properties : {};
  const sample: Record<string, unknown> = {
    string: "emulated",
    number: 1,
    integer: 1,
    boolean: true,
    array: [],
  };
  return Object.fromEntries(
    Object.entries(properties).map(([name, p]) => {
      const type = isObj(p) ? String(p.type ?? "string").toLowerCase() : "string";
      return [name, sample[type] ?? {}];
    }),
  );
}

/** Gemini 2.5's thinking budget: 0 turns it off, -1 (or unset in a thinkingConfig) is dynamic. */
function thinkingBudget(thinking: unknown): number {
  if (!isObj(thinking)) return 0;
  const budget = typeof thinking.thinkingBudget === "number" ? thinking.thinkingBudget : -1;
  return budget < 0 ? 8_192 : budget;
}

function stopAt(text: string, stopSequences: unknown): string {
  const cuts = (Array.isArray(stopSequences) ? stopSequences : [])
    .filter((s): s is string => typeof s === "string" && s !== "")
    .map((s) => text.indexOf(s))
    .filter((i) => i >= 0);
  return cuts.length > 0 ? text.slice(0, Math.min(...cuts)) : text;
}
