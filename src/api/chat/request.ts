import { z } from "zod";
import { badRequest } from "../../errors.js";

const contentPart = z.looseObject({ type: z.string() });

const message = z.looseObject({
  role: z.enum(["system", "developer", "user", "assistant", "tool", "function"]),
  content: z.union([z.string(), z.array(contentPart), z.null()]).optional(),
  name: z.string().max(256).optional(),
});

/** An OpenAI chat request. Unknown parameters pass through to the provider untouched. */
export const chatRequestSchema = z.looseObject({
  model: z.string().min(1).max(256),
  messages: z.array(message).min(1).max(4096),
  stream: z.boolean().optional(),
  stream_options: z.looseObject({ include_usage: z.boolean().optional() }).nullable().optional(),
  max_tokens: z.number().int().positive().nullable().optional(),
  max_completion_tokens: z.number().int().positive().nullable().optional(),
  n: z.literal(1, { message: "only n = 1 is supported" }).nullable().optional(),
  temperature: z.number().min(0).max(2).nullable().optional(),
  top_p: z.number().min(0).max(1).nullable().optional(),
  user: z.string().max(512).optional(),
});
export type ChatRequestBody = z.infer<typeof chatRequestSchema>;

/** Parses a JSON body against a schema; the first problem becomes a 400 naming the parameter. */
export function parseBody<T>(schema: z.ZodType<T>, body: unknown): T {
  if (body === undefined || body === null || typeof body !== "object" || Array.isArray(body)) {
    throw badRequest(
      "The request body must be a JSON object (Content-Type: application/json).",
      "invalid_body",
    );
  }
  if (Object.keys(body).length === 0) throw badRequest("The request body is empty.", "invalid_body");
  const parsed = schema.safeParse(body);
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0]!;
  const param = issue.path.map(String).join(".") || null;
  const missing = issue.code === "invalid_type" && valueAt(body, issue.path) === undefined;
  if (missing)
    throw badRequest(`Missing required parameter: '${param}'.`, "missing_required_parameter", param);
  throw badRequest(`Invalid '${param}': ${issue.message}.`, "invalid_value", param);
}

function valueAt(value: unknown, path: readonly PropertyKey[]): unknown {
  let current = value;
  for (const key of path) {
    if (current === null || typeof current !== "object") return undefined;
    current = (current as Record<PropertyKey, unknown>)[key];
  }
  return current;
}
