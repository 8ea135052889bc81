import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { useStack, waitFor } from "./helpers/stack.js";
import { createDeps, type Deps } from "../src/deps.js";
import { createLogger } from "../src/platform/logger.js";
import { startWorkers, type Workers } from "../jobs/worker.js";

// Two attempts: both get the injected 429, so the chat fails for good.
const stack = useStack({ worker: false, env: { CHAT_ATTEMPTS: "2" } });
let workerDeps: Deps;
let workers: Workers;
let key: string;
const lines: Record<string, unknown>[] = [];
const sink = { write: (line: string) => void lines.push(JSON.parse(line)) };

const SECRET_429 = "Rate limit reached for gpt-4o-mini in organization org-secret on requests per min (RPM).";

beforeAll(async () => {
  workerDeps = createDeps(stack.config, "worker");
  workers = startWorkers({ ...workerDeps, logger: createLogger("info", "worker", sink) });
  key = (await stack.customer()).key;
});
afterAll(async () => {
  await workers?.close();
  await workerDeps?.close();
});

type ErrorBody = { error: { message: string; type: string; code: string | null } };

async function chat(headers: Record<string, string> = {}, extra: object = {}) {
  const res = await fetch(`${stack.url}/v1/chat/completions`, {
    method: "POST",
    headers: { authorization: `Bearer ${key}`, "content-type": "application/json", ...headers },
    body: JSON.stringify({ model: "gpt-4o-mini", messages: [{ role: "user", content: "hi" }], ...extra }),
  });
  return { res, text: await res.text(), requestId: res.headers.get("meterline-request-id")! };
}

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
      const { res, text, requestId } = await chat(headers, extra);
      expect(res.status).toBe(502);
      expect(text).not.toContain("org-secret");
      expect(text).toContain(requestId);
      expect(text).toContain("upstream_error");
      expect(await providerLogFor(requestId)).toMatchObject({ status: 429 });
    },
  );

  it("an async chat's poll shows the generic error, not the provider's text", async () => {
    stack.emulator.injectFault({ kind: "status", status: 429, times: 2, message: SECRET_429 });
    const { res, requestId } = await chat({ prefer: "respond-async" });
    expect(res.status).toBe(202);
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
    const { res, text } = await chat();
    expect(res.status).toBe(400);
    expect((JSON.parse(text) as ErrorBody).error.message).toBe(message);
  });

  it.each([
    [400, "Your organization org-secret must be verified to use this model."],
    [400, "Project proj_secret does not have access to this feature."],
    [404, "The model gpt-4o-mini does not exist or you do not have access to it."],
  ])("replaces a provider %s message that may name the operator's account", async (status, message) => {
    stack.emulator.injectFault({ kind: "status", status, times: 1, message, code: "some_code" });
    const { res, text } = await chat();
    expect(res.status).toBe(status);
    expect(text).not.toContain("secret");
    expect((JSON.parse(text) as ErrorBody).error).toMatchObject({
      message: `The upstream model provider refused this request (status ${status}, code some_code).`,
      code: "some_code",
    });
  });
});
