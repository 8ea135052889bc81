import { describe, expect, it } from "vitest";
import type OpenAI from "openai";
import { ask, useStack, waitFor } from "./helpers/stack.js";

type ChatStatus = {
  status: string;
  completion?: OpenAI.ChatCompletion;
  error?: { message: string; type: string };
};

// The model takes longer than a synchronous caller is willing to wait.
const stack = useStack({ env: { CHAT_WAIT_MS: "300" }, emulator: { latencyMs: 1_200 } });

const post = (key: string, headers: Record<string, string> = {}) =>
  stack.chat(key, ask("take your time"), { headers });
const poll = async (location: string, key: string) => {
  const res = await fetch(`${stack.url}${location}`, { headers: { authorization: `Bearer ${key}` } });
  return { status: res.status, body: (await res.json()) as ChatStatus };
};

describe("an async chat", () => {
  it("a synchronous request that outlives CHAT_WAIT_MS turns into 202 with a Location to poll", async () => {
    const { customerId, key } = await stack.customer();
    const res = await post(key);
    expect(res.status).toBe(202);
    const location = res.headers.get("location")!;
    const requestId = res.requestId!;
    expect(location).toBe(`/v1/chats/${requestId}`);
    expect(res.body).toMatchObject({ id: requestId, object: "chat.request" });

    const running = await waitFor(async () => {
      const { body } = await poll(location, key);
      return body.status === "running" ? body : undefined;
    });
    expect(running.completion).toBeUndefined();
    const done = await waitFor(async () => {
      const { body } = await poll(location, key);
      return body.status === "succeeded" ? body : undefined;
    });
    expect(done.completion?.object).toBe("chat.completion");
    expect(done.completion?.choices[0]?.message.content).toMatch(/^Echo: take your time/);
    expect(
      await stack.db("usage_events").where({ customer_id: customerId, request_id: requestId }),
    ).toHaveLength(1);
  });

  it("Prefer: respond-async answers 202 at once; another customer's key gets 404; failures show their error", async () => {
    const { key } = await stack.customer();
    const other = await stack.customer();
    stack.emulator.injectFault({ kind: "status", status: 400, times: 1, message: "No such thing." });
    const res = await post(key, { prefer: "respond-async" });
    expect(res.status).toBe(202);
    const location = res.headers.get("location")!;
    expect((await poll(location, other.key)).status).toBe(404);
    const failed = await waitFor(async () => {
      const { body } = await poll(location, key);
      return body.status === "failed" ? body : undefined;
    });
    expect(failed.error).toMatchObject({ message: "No such thing.", type: "invalid_request_error" });
    expect((await poll("/v1/chats/chat_doesnotexist", key)).status).toBe(404);
  });

  it("keeps finished chats for at least 24 hours by default", () => {
    const opts = stack.web.queues.chat.defaultJobOptions;
    expect(opts.removeOnComplete).toMatchObject({ age: 86_400 });
    expect((opts.removeOnFail as { age: number }).age).toBeGreaterThanOrEqual(86_400);
  });
});
