import type { Request } from "express";
import { describe, expect, it } from "vitest";
import { HttpError } from "../src/errors.js";
import { parseChatCall } from "../src/api/chat/request.js";
import { validateUsageEvents } from "../src/api/usage-events.js";
import { MAX_TOKENS_PER_EVENT } from "../src/billing/ledger/usage-bounds.js";

const config = {
  defaultModelPrice: undefined,
  idempotencyTtlS: 86_400,
  jobRetentionS: 3_600,
  chatJobMaxBytes: 1_000_000,
};
const valid = { model: "gpt-4o-mini", messages: [{ role: "user", content: "hi" }] };

function refusal(body: unknown, headers: Record<string, string> = {}) {
  const req = { body, header: (name: string) => headers[name.toLowerCase()] } as unknown as Request;
  try {
    parseChatCall(req, config);
  } catch (err) {
    expect(err).toBeInstanceOf(HttpError);
    return (err as HttpError).toBody().error;
  }
  throw new Error("the request was accepted");
}

describe("a chat request's validation", () => {
  it.each([
    [
      { model: "gpt-4o-mini" },
      "missing_required_parameter",
      "messages",
      "Missing required parameter: 'messages'.",
    ],
    [{ ...valid, n: 2 }, "invalid_value", "n", "Invalid 'n': only n = 1 is supported."],
    [
      { ...valid, max_tokens: -1 },
      "invalid_value",
      "max_tokens",
      expect.stringMatching(/^Invalid 'max_tokens': /),
    ],
    [{ ...valid, messages: [{ role: "wizard" }] }, "invalid_value", "messages.0.role", expect.any(String)],
    [
      { ...valid, model: "no-such-model" },
      "model_not_found",
      "model",
      expect.stringContaining("no-such-model"),
    ],
    [[], "invalid_body", null, "The request body must be a JSON object (Content-Type: application/json)."],
    [{}, "invalid_body", null, "The request body is empty."],
  ])("refuses %j with %s naming %s", (body, code, param, message) => {
    expect(refusal(body)).toEqual({ type: "invalid_request_error", code, param, message });
  });

  it("refuses an Idempotency-Key that is not 1–255 printable ASCII characters", () => {
    expect(refusal(valid, { "idempotency-key": "x".repeat(256) })).toEqual({
      type: "invalid_request_error",
      code: "invalid_idempotency_key",
      param: null,
      message: "Idempotency-Key must be 1–255 printable ASCII characters.",
    });
  });

  it("parses a valid request into how it is answered and how long its outcome is kept", () => {
    const req = (body: unknown, headers: Record<string, string>) =>
      ({ body, header: (name: string) => headers[name] }) as unknown as Request;
    const streamed = { ...valid, stream: true, stream_options: { include_usage: true } };
    expect(parseChatCall(req(streamed, { "idempotency-key": "k" }), config)).toMatchObject({
      mode: "stream",
      includeUsage: true,
      idempotencyKey: "k",
      keepS: 86_400,
      request: valid,
    });
    expect(parseChatCall(req(valid, { prefer: "respond-async" }), config)).toMatchObject({
      mode: "async",
      keepS: 3_600,
    });
    expect(parseChatCall(req(valid, {}), config)).toMatchObject({ mode: "sync", keepS: 0 });
  });
});

describe("a usage event's validation", () => {
  const now = new Date("2026-06-15T12:00:00Z");
  const event = { id: "e", model: "gpt-4o-mini", prompt_tokens: 10, completion_tokens: 5 };
  const problemOf = (raw: unknown) => {
    const { errors } = validateUsageEvents([raw], { defaultPrice: undefined, now });
    expect(errors).toHaveLength(1);
    const { code, param, message } = errors[0]!;
    return [code, param, message];
  };

  it.each([
    ["not an object", "x", "invalid_event", null, "each event must be a JSON object"],
    ["no id", { ...event, id: undefined }, "missing_required_parameter", "events[0].id", "'id' is required"],
    [
      "a numeric id",
      { ...event, id: 5 },
      "invalid_value",
      "events[0].id",
      "'id' must be a string of 1–255 characters",
    ],
    [
      "an empty model",
      { ...event, model: "" },
      "invalid_value",
      "events[0].model",
      "'model' must be a non-empty string",
    ],
    [
      "no model",
      { ...event, model: undefined },
      "missing_required_parameter",
      "events[0].model",
      "'model' is required",
    ],
    [
      "no prompt_tokens",
      { ...event, prompt_tokens: undefined },
      "missing_required_parameter",
      "events[0].prompt_tokens",
      "'prompt_tokens' is required",
    ],
    [
      "fractional completion_tokens",
      { ...event, completion_tokens: 1.5 },
      "invalid_value",
      "events[0].completion_tokens",
      "'completion_tokens' must be a non-negative integer",
    ],
    [
      "negative cached_tokens",
      { ...event, cached_tokens: -1 },
      "invalid_value",
      "events[0].cached_tokens",
      "'cached_tokens' must be a non-negative integer",
    ],
    [
      "too many tokens",
      { ...event, prompt_tokens: MAX_TOKENS_PER_EVENT + 1 },
      "tokens_out_of_range",
      "events[0].prompt_tokens",
      `'prompt_tokens' is at most ${MAX_TOKENS_PER_EVENT} per event; split larger usage into several events`,
    ],
    [
      "more cached than prompt tokens, and a bad timestamp",
      { ...event, cached_tokens: 11, timestamp: "yesterday" },
      "invalid_value",
      "events[0].cached_tokens",
      "'cached_tokens' cannot exceed 'prompt_tokens'",
    ],
    [
      "more reasoning than completion tokens",
      { ...event, reasoning_tokens: 6 },
      "invalid_value",
      "events[0].reasoning_tokens",
      "'reasoning_tokens' cannot exceed 'completion_tokens'",
    ],
    [
      "a timestamp in words",
      { ...event, timestamp: "yesterday" },
      "invalid_value",
      "events[0].timestamp",
      "'timestamp' must be an ISO 8601 date-time or Unix seconds",
    ],
    [
      "a timestamp an hour ahead",
      { ...event, timestamp: now.getTime() / 1000 + 3600 },
      "timestamp_out_of_range",
      "events[0].timestamp",
      "'timestamp' is in the future",
    ],
    [
      "an unknown model",
      { ...event, model: "house-model" },
      "model_not_found",
      "events[0].model",
      "the model 'house-model' does not exist or has no price configured",
    ],
  ])("refuses %s", (_what, raw, code, param, message) => {
    expect(problemOf(raw)).toEqual([code, param, message]);
  });

  it("defaults optional counts and the timestamp, and reports a repeated id after its first use", () => {
    const { valid, errors } = validateUsageEvents([event, { ...event, cached_tokens: null }], {
      defaultPrice: undefined,
      now,
    });
    expect(valid).toEqual([
      {
        index: 0,
        id: "e",
        model: "gpt-4o-mini",
        promptTokens: 10,
        cachedTokens: 0,
        cacheWriteTokens: 0,
        completionTokens: 5,
        reasoningTokens: 0,
        timestamp: now,
      },
    ]);
    expect(errors).toEqual([
      {
        index: 1,
        id: "e",
        param: "events[1].id",
        code: "duplicate_id",
        message: "id 'e' appears earlier in this batch",
      },
    ]);
  });
});
