import { isObj } from "../openai-emulator/prompt-tokens.js";

type Json = Record<string, unknown>;

/** What Anthropic's Messages API would refuse with a 400, as its message; undefined when valid. */
export function invalidRequest(body: unknown): string | undefined {
  if (!isObj(body)) return "request body must be a JSON object";
  if (typeof body.model !== "string" || body.model === "") return "model: Field required";
  const max = body.max_tokens;
  if (typeof max !== "number" || !Number.isInteger(max) || max < 1)
    return "max_tokens: Field required (a positive integer)";
  const messages = body.messages;
  if (!Array.isArray(messages) || messages.length === 0) return "messages: at least one message is required";
  for (const [i, m] of messages.entries()) {
    if (!isObj(m) || (m.role !== "user" && m.role !== "assistant"))
      return `messages.${i}.role: Input should be 'user' or 'assistant'`;
    if (!(typeof m.content === "string" || Array.isArray(m.content)))
      return `messages.${i}.content: Input should be a string or a list of content blocks`;
    if (Array.isArray(m.content) && m.content.some((b) => isObj(b) && b.type === "text" && b.text === ""))
      return `messages.${i}: text content blocks must be non-empty`;
  }
  const t = body.temperature;
  if (t !== undefined && (typeof t !== "number" || t < 0 || t > 1)) return "temperature: range: 0..1";
  return invalidThinking(body, max);
}

function invalidThinking(body: Json, maxTokens: number): string | undefined {
  const thinking = body.thinking;
  if (!isObj(thinking) || thinking.type !== "enabled") return undefined;
  const budget = thinking.budget_tokens;
  if (typeof budget !== "number" || !Number.isInteger(budget) || budget < 1024)
    return "thinking.enabled.budget_tokens: Input should be greater than or equal to 1024";
  if (budget >= maxTokens) return "`max_tokens` must be greater than `thinking.budget_tokens`";
  return undefined;
}
