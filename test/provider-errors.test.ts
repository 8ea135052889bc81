import { beforeAll, describe, expect, it } from "vitest";
import { ask, useStack, waitFor } from "./helpers/stack.js";
import { createLogger } from "../src/platform/logger.js";

// Two attempts: both get the injected 429, so the chat fails for good.
const stack = useStack({ worker: false, env: { CHAT_ATTEMPTS: "2" } });
let key: string;
const lines: Record<string, unknown>[] = [];
const sink = { write: (line: string) => void lines.push(JSON.parse(line)) };

const SECRET_429 = "Rate limit reached for gpt-4o-mini in organization org-secret on requests per min (RPM).";

beforeAll(async () => {
  // The stack's worker, logging at info into memory.
  await stack.startWorker({}, { logger: createLogger("info", "worker", sink) });
  key = (await stack.customer()).key;
});

const chat = async (headers: Record<string, string> = {}, extra: Record<string, unknown> = {}) => {
  const answer = await stack.chat(key, ask("hi", extra), { headers });
  return { ...answer, requestId: answer.requestId! };
};

const providerLogFor = (requestId: string) =>
  waitFor(() =>
    lines.find(
      (l) =>
        l.msg === "LLM provider error" &&
        l.requestId === requestId &&
        String(l.providerMessage).includes("org-secret"),
    ),
  );

describe("provider errors seen by customers", () => {
  it.each([
    ["a plain chat", {}, {}],
    ["a keyed chat", { "idempotency-key": "leak-1" }, {}],
    ["a stream", {}, { stream: true }],
  ])(
    "a provider 429 past the retries answers %s with a generic 502 and the request id",
    async (_, headers, extra) => {
      stack.emulator.injectFault({ kind: "status", status: 429, times: 2, message: SECRET_429 });
      const { status, text, requestId } = await chat(headers, extra);
      expect(status).toBe(502);
      expect(text).not.toContain("org-secret");
      expect(text).toContain(requestId);
      expect(text).toContain("upstream_error");
      expect(await providerLogFor(requestId)).toMatchObject({ status: 429 });
    },
  );

  it("an async chat's poll shows the generic error, not the provider's text", async () => {
    stack.emulator.injectFault({ kind: "status", status: 429, times: 2, message: SECRET_429 });
    const { status, requestId } = await chat({ prefer: "respond-async" });
    expect(status).toBe(202);
    const polled = await waitFor(async () => {
      const poll = await fetch(`${stack.url}/v1/chats/${requestId}`, {
        headers: { authorization: `Bearer ${key}` },
      });
      const text = await poll.text();
      return (JSON.parse(text) as { status: string }).status === "failed" ? text : undefined;
    });
    expect(polled).not.toContain("org-secret");
    expect(polled).toContain(requestId);
    await providerLogFor(requestId);
  });

  it("keeps a provider 400's message about the customer's own parameters", async () => {
    const message = "Invalid 'messages[0].content': string too long.";
    stack.emulator.injectFault({ kind: "status", status: 400, times: 1, message });
    const { status, body } = await chat();
    expect(status).toBe(400);
    expect(body.error?.message).toBe(message);
  });

  it.each([
    [400, "Your organization org-secret must be verified to use this model."],
    [400, "Project proj_secret does not have access to this feature."],
    [404, "The model gpt-4o-mini does not exist or you do not have access to it."],
  ])("replaces a provider %s message that may name the operator's account", async (status, message) => {
    stack.emulator.injectFault({ kind: "status", status, times: 1, message, code: "some_code" });
    const answer = await chat();
    expect(answer.status).toBe(status);
    expect(answer.text).not.toContain("secret");
    expect(answer.body.error).toMatchObject({
      message: `The upstream model provider refused this request (status ${status}, code some_code).`,
      code: "some_code",
    });
  });
});
