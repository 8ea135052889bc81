import { z } from "zod";
import { badRequest } from "../errors.js";

/** What is wrong with a request's input: the field (null: the input as a whole), a code, a message. */
export interface InputProblem {
  param: string | null;
  code: string;
  message: string;
}

/**
 * The one way the API validates bodies, queries and params: parses with a zod schema, and turns the
 * first issue into an OpenAI-style 400 (`invalid_request_error`) whose `param` names the field.
 */
export function parseInput<T>(schema: z.ZodType<T>, input: unknown): T {
  const checked = checkInput(schema, input);
  if (checked.ok) return checked.data;
  const { message, code, param } = checked.problem;
  throw badRequest(message, code, param);
}

/**
 * As parseInput, but answers the problem instead of throwing it: for inputs refused one by one (a
 * usage batch's events). The code is `missing_required_parameter` for an absent field,
 * `invalid_value` otherwise, or what a custom issue names in `params.code`. A message the schema
 * states (`{ error: … }`) is used as it is; otherwise one naming the field is made from zod's.
 */
export function checkInput<T>(
  schema: z.ZodType<T>,
  input: unknown,
): { ok: true; data: T } | { ok: false; problem: InputProblem } {
  const parsed = schema.safeParse(input, { reportInput: true, error: defaultMessage });
  if (parsed.success) return { ok: true, data: parsed.data };
  const issue = parsed.error.issues[0]!;
  const custom = issue.code === "custom" ? issue.params?.code : undefined;
  const code =
    typeof custom === "string" ? custom : missing(issue) ? "missing_required_parameter" : "invalid_value";
  return { ok: false, problem: { param: paramOf(issue.path), code, message: issue.message } };
}

/** A JSON request body: an object with at least one field, then `schema`. */
export function jsonBody<T>(schema: z.ZodType<T, object>) {
  return z
    .custom<object>((body) => body !== null && typeof body === "object" && !Array.isArray(body), {
      message: "The request body must be a JSON object (Content-Type: application/json).",
      params: { code: "invalid_body" },
    })
    .refine((body) => Object.keys(body).length > 0, {
      message: "The request body is empty.",
      params: { code: "invalid_body" },
      abort: true,
    })
    .pipe(schema);
}

/** Route params `{ id }` that must be a positive integer id (code `invalid_id`). */
export function positiveIdParams(message: string) {
  return z.object({
    id: z
      .string()
      .refine((id) => /^[1-9]\d{0,14}$/.test(id), { message, params: { code: "invalid_id" } })
      .transform(Number),
  });
}

// zod consults a parse's error map only where the schema states no message of its own.
function defaultMessage(issue: z.core.$ZodRawIssue): string {
  const param = paramOf(issue.path ?? []);
  if (missing(issue)) return `Missing required parameter: '${param}'.`;
  const localized = z.config().localeError?.(issue);
  const reason = typeof localized === "string" ? localized : (localized?.message ?? "Invalid input");
  return param === null ? `Invalid request: ${reason}.` : `Invalid '${param}': ${reason}.`;
}

const missing = (issue: { code: string; input?: unknown }) =>
  issue.code === "invalid_type" && issue.input === undefined;

const paramOf = (path: readonly PropertyKey[]) => path.map(String).join(".") || null;
