import { beforeAll, describe, expect, it } from "vitest";
import { MAX_JSON_DEPTH, jsonDepthExceeds } from "../src/api/middleware/json-depth.js";
import { ask, useStack } from "./helpers/stack.js";

const stack = useStack();
let key: string;

beforeAll(async () => {
  key = (await stack.customer()).key;
});

const nested = (depth: number) => `${"[".repeat(depth)}${"]".repeat(depth)}`;

describe("JSON nesting depth", () => {
  it.each([
    ["without an Idempotency-Key", {}],
    ["with an Idempotency-Key", { "idempotency-key": "deep-1" }],
  ])("a 10,000-deep value in a chat body is refused with 400 %s", async (_, headers) => {
    const body = `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}],"metadata":${nested(10_000)}}`;
    const res = await stack.chat(key, body, { headers });
    expect(res.status).toBe(400);
    expect(res.body.error).toMatchObject({ type: "invalid_request_error", code: "nesting_too_deep" });
    const fine = await stack.chat(key, ask());
    expect(fine.status).toBe(200);
  });

  it("applies to every /v1 JSON body, ingestion included", async () => {
    const res = await fetch(`${stack.url}/v1/usage`, {
      method: "POST",
      headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
      body: `{"events":[{"id":"e1","model":"gpt-4o-mini","prompt_tokens":1,"completion_tokens":1,"meta":${nested(10_000)}}]}`,
    });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe("nesting_too_deep");
  });

  it("accepts exactly the documented depth and refuses one more", () => {
    expect(jsonDepthExceeds(JSON.parse(nested(MAX_JSON_DEPTH)), MAX_JSON_DEPTH)).toBe(false);
    expect(jsonDepthExceeds(JSON.parse(nested(MAX_JSON_DEPTH + 1)), MAX_JSON_DEPTH)).toBe(true);
    const wide = {
      a: [{ b: { c: [1, 2, { d: "x" }] } }],
      e: Array.from({ length: 1000 }, () => ({ f: [] })),
    };
    expect(jsonDepthExceeds(wide, 6)).toBe(false);
    expect(jsonDepthExceeds(wide, 5)).toBe(true);
  });
});
