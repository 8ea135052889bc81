import { describe, expect, it } from "vitest";
import { ask, useStack, waitFor } from "./helpers/stack.js";
import { chatCancelKey } from "../src/chat/stream/protocol.js";
import type { EmulatorRequestRecord } from "../src/local/openai-emulator.js";

// A relay gives up after CHAT_WAIT_MS without a chunk.
const stack = useStack({ env: { CHAT_WAIT_MS: "1000" } });

const rowsFor = (customerId: string) => stack.db("usage_events").where({ customer_id: customerId });
const nextRecord = () =>
  new Promise<EmulatorRequestRecord>((resolve) =>
    stack.emulator.events.once("request", (r: EmulatorRequestRecord) => resolve(r)),
  );
const chatWorker = () => stack.workers!.workers.find((w) => w.name === "chat")!;

describe("billed for what was served", () => {
  it("cancels a stream the relay gave up on, and bills only what the provider produced before", async () => {
    const { customerId, key } = await stack.customer();
    // 40 answer tokens in chunks of 4, each 1.2 s apart: the relay gives up after the first.
    stack.emulator.setAnswerTokens(40);
    stack.emulator.setChunkDelay(1_200);
    try {
      const closed = nextRecord();
      const { text } = await stack.chat(key, ask("slow please", { stream: true }));
      expect(text).toContain('"code":"timeout"');
      const record = await closed;

      expect(record.aborted).toBe(true);
      const row = await waitFor(async () => (await rowsFor(customerId))[0], { what: "the usage row" });
      expect(row.completion_tokens).toBe(record.completionTokens);
      expect(row.completion_tokens).toBeLessThan(40);
      expect(await rowsFor(customerId)).toHaveLength(1);
    } finally {
      stack.emulator.setChunkDelay(0);
      stack.emulator.setAnswerTokens(undefined);
    }
  });

  it("calls no provider for a stream abandoned while queued, releases its hold, and runs a keyed retry for real", async () => {
    const { customerId, key } = await stack.customer({ planId: "free" });
    const calls = stack.emulator.calls;
    await chatWorker().pause();
    const client = new AbortController();
    const response = await stack.chatStream(key, ask("never mind"), {
      headers: { "idempotency-key": "abandon-1" },
      signal: client.signal,
    });
    const requestId = response.headers.get("meterline-request-id")!;
    client.abort();
    await waitFor(async () => (await stack.web.redis.exists(chatCancelKey(stack.config, requestId))) === 1, {
      what: "the cancel mark",
    });
    chatWorker().resume();
    await waitFor(async () => (await stack.web.queues.chat.getJob(requestId))?.finishedOn, {
      what: "the abandoned job to finish",
    });

    expect(stack.emulator.calls).toBe(calls);
    expect(await rowsFor(customerId)).toHaveLength(0);
    const holds = await quotaFields(customerId);
    expect(holds.filter((f) => f.startsWith("r:"))).toEqual([]);
    expect(holds.length === 0 || (await quotaUsed(customerId)) === 0).toBe(true);

    const retried = await stack.chat(key, ask("never mind", { stream: true }), {
      headers: { "idempotency-key": "abandon-1" },
    });
    expect(retried.text).toContain('"content":"Echo: never mind"');
    expect(retried.text.trimEnd().endsWith("data: [DONE]")).toBe(true);
    expect(stack.emulator.calls).toBe(calls + 1);
    expect(await rowsFor(customerId)).toHaveLength(1);
  });
});

async function quotaKey(customerId: string): Promise<string | undefined> {
  const [, keys] = await stack.web.redis.scan("0", "MATCH", `*quota-${customerId}*`, "COUNT", 10_000);
  return keys[0];
}
async function quotaFields(customerId: string): Promise<string[]> {
  const key = await quotaKey(customerId);
  return key ? stack.web.redis.hkeys(key) : [];
}
async function quotaUsed(customerId: string): Promise<number> {
  return Number(await stack.web.redis.hget((await quotaKey(customerId))!, "used"));
}
