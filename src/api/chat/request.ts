import type { Request } from "express";
import { z } from "zod";
import type { Config } from "../../config.js";
import { badRequest } from "../../errors.js";
import { resolvePrice } from "../../billing/pricing/prices.js";
import { unpricedOption } from "../../billing/pricing/priced-options.js";
import { unconfiguredMessage, unconfiguredProvider, type ProviderSettings } from "../../llm/providers.js";
import type { ChatJobData } from "../../queues/queues.js";
import { jsonBody, parseInput } from "../input.js";
import { refuseOversizedJob } from "./job-size.js";
import { END_USER_MAX_CHARS } from "../../billing/end-users/limits.js";

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
  n: z.literal(1, { message: "Invalid 'n': only n = 1 is supported." }).nullable().optional(),
  temperature: z.number().min(0).max(2).nullable().optional(),
  top_p: z.number().min(0).max(1).nullable().optional(),
  user: z.string().max(END_USER_MAX_CHARS).optional(),
});
export type ChatRequestBody = z.infer<typeof chatRequestSchema>;
const chatBody = jsonBody(chatRequestSchema);

const idempotencyKeySchema = z
  .string()
  .refine((key) => /^[\x21-\x7e]{1,255}$/.test(key), {
    message: "Idempotency-Key must be 1–255 printable ASCII characters.",
    params: { code: "invalid_idempotency_key" },
  })
  .optional();

/** How the caller is answered: wait for the completion, poll for it (202), or stream it. */
export type ChatMode = "sync" | "async" | "stream";

/** One chat request, parsed: everything the route decides on. */
export interface ChatCall {
  /** The body as sent: what an Idempotency-Key's body hash covers. */
  body: ChatRequestBody;
  /** What the worker asks the provider: the body minus the streaming flags. */
  request: ChatJobData["request"];
  mode: ChatMode;
  /** A stream ends with the usage chunk only when asked for (`stream_options.include_usage`). */
  includeUsage: boolean;
  idempotencyKey: string | undefined;
  /** How long the outcome is kept in Postgres; 0: not kept (an unkeyed, awaited chat). */
  keepS: number;
  /** The customer's end user this request is for: `user`, or the X-End-User header. */
  endUser: string | undefined;
}

/**
 * The model checks, in the order a client fixes them: it has a price, its provider is configured
 * here (src/llm/providers.ts), and no option asks for something the price cannot bill.
 */
function refuseUnservedModel(
  body: ChatRequestBody,
  config: Pick<Config, "defaultModelPrice"> & ProviderSettings,
): void {
  const price = resolvePrice(body.model, config.defaultModelPrice);
  if (!price) {
    throw badRequest(
      `The model '${body.model}' does not exist or has no price configured.`,
      "model_not_found",
      "model",
    );
  }
  const provider = unconfiguredProvider(body.model, config);
  if (provider)
    throw badRequest(unconfiguredMessage(body.model, provider), "provider_not_configured", "model");
  const option = unpricedOption(body, price);
  if (option) throw badRequest(option.message, "unsupported_pricing_option", option.param);
}

/**
 * Parses POST /v1/chat/completions into one typed value, or throws its 400 (or 413). Checks run in
 * the order a client fixes them: the body, its model, the Idempotency-Key, the size of the job.
 */
export function parseChatCall(
  req: Request,
  config: Pick<Config, "defaultModelPrice" | "idempotencyTtlS" | "jobRetentionS" | "chatJobMaxBytes"> &
    ProviderSettings,
): ChatCall {
  const body = parseInput(chatBody, req.body);
  refuseUnservedModel(body, config);
  const idempotencyKey = parseInput(idempotencyKeySchema, req.header("idempotency-key"));
  const endUser = endUserOf(body.user, req.header("x-end-user"));
  const respondAsync = /\brespond-async\b/i.test(req.header("prefer") ?? "");
  // Async requests are polled, never streamed; the worker always asks the provider for usage.
  const { stream, stream_options: streamOptions, ...request } = body;
  const mode: ChatMode = respondAsync ? "async" : stream === true ? "stream" : "sync";
  refuseOversizedJob(config, request);
  // Keyed and async chats keep their outcome in Postgres for as long as it is promised.
  const keepS = Math.max(
    idempotencyKey === undefined ? 0 : config.idempotencyTtlS,
    mode === "async" ? config.jobRetentionS : 0,
  );
  const includeUsage = streamOptions?.include_usage === true;
  return { body, request, mode, includeUsage, idempotencyKey, keepS, endUser };
}

const endUserHeader = z
  .string()
  .max(END_USER_MAX_CHARS, `X-End-User must be at most ${END_USER_MAX_CHARS} characters.`)
  .optional();

/**
 * The end user a request is for, from the OpenAI `user` field or, for clients that cannot set it,
 * the X-End-User header; empty counts as absent. Both given and different → 400: neither is guessed.
 */
function endUserOf(user: string | undefined, header: string | undefined): string | undefined {
  const fromHeader = parseInput(endUserHeader, header) || undefined;
  const fromBody = user || undefined;
  if (fromBody !== undefined && fromHeader !== undefined && fromBody !== fromHeader) {
    throw badRequest(
      "The 'user' field and the X-End-User header name different end users; send one, or the same in both.",
      "end_user_mismatch",
      "user",
    );
  }
  return fromBody ?? fromHeader;
}
