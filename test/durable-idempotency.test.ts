import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Redis } from "ioredis";
import OpenAI from "openai";
import { ask, useStack, waitFor } from "./helpers/stack.js";

// A private Redis, because the test empties it with FLUSHALL.
const stack = useStack({ redis: "private", env: { CHAT_PURGE_INTERVAL_MS: "1000" } });
let redis: Redis;

beforeAll(() => {
  redis = new Redis(stack.redisServer.url);
});
afterAll(() => {
  redis?.disconnect();
});
const rowsFor = (customerId: string) => stack.db("usage_events").where({ customer_id: customerId });

async function keyed(openai: OpenAI, key: string, content = "remember me") {
  const { data, response } = await openai.chat.completions
    .create(ask(content), { headers: { "Idempotency-Key": key } })
    .withResponse();
  return { completion: data, requestId: response.headers.get("meterline-request-id")! };
}

describe("an Idempotency-Key, kept in Postgres", () => {
  it("answers a repeat after the chat job was removed from Redis, without the LLM and without a second row", async () => {
    const { customerId, openai } = await stack.customer();
    const first = await keyed(openai, "removed-1");
    await (await stack.web.queues.chat.getJob(first.requestId))!.remove();
    const calls = stack.emulator.calls;

    const again = await keyed(openai, "removed-1");

    expect(again.requestId).toBe(first.requestId);
    expect(again.completion).toEqual(first.completion);
    expect(stack.emulator.calls).toBe(calls);
    expect(await rowsFor(customerId)).toHaveLength(1);
    const other = await openai.chat.completions
      .create(ask("another body"), { headers: { "Idempotency-Key": "removed-1" } })
      .catch((e: unknown) => e);
    expect(other).toBeInstanceOf(OpenAI.UnprocessableEntityError);
  });

  it("answers repeats after Redis lost everything (FLUSHALL): sync, streamed and polled alike", async () => {
    const { customerId, key, openai } = await stack.customer();
    const sync = await keyed(openai, "flushed-sync");
    const stream = () =>
      stack.chat(key, ask("stream me", { stream: true }), { headers: { "idempotency-key": "s" } });
    const streamed = await stream();
    const accepted = await stack.chat(key, ask("poll me"), { headers: { prefer: "respond-async" } });
    const asyncId = accepted.body.id!;
    const poll = () =>
      fetch(`${stack.url}/v1/chats/${asyncId}`, { headers: { authorization: `Bearer ${key}` } }).then(
        (r) => r.json() as Promise<{ status: string; completion?: OpenAI.ChatCompletion }>,
      );
    const polled = await waitFor(async () => {
      const p = await poll();
      return p.status === "succeeded" && p.completion;
    });
    await waitFor(async () => (await rowsFor(customerId)).length === 3);

    await redis.flushall();
    const calls = stack.emulator.calls;

    const syncAgain = await keyed(openai, "flushed-sync");
    const streamedAgain = await stream();
    const polledAgain = await poll();

    expect(syncAgain.completion).toEqual(sync.completion);
    expect(streamedAgain.content).toBe(streamed.content);
    expect(streamedAgain.text.trimEnd().endsWith("data: [DONE]")).toBe(true);
    expect(polledAgain).toMatchObject({ status: "succeeded", completion: polled });
    expect(stack.emulator.calls).toBe(calls);
    expect(await rowsFor(customerId)).toHaveLength(3);
  });

  it("runs a repeat for real when Redis lost the job before it was answered, and bills it once", async () => {
    const { customerId, openai } = await stack.customer();
    // The claim exists (the first request got as far as Postgres), the job does not.
    const worker = stack.workers!;
    await worker.workers.find((w) => w.name === "chat")!.pause();
    const pending = keyed(openai, "lost-job").catch((e: unknown) => e);
    await waitFor(async () => (await stack.web.queues.chat.getWaitingCount()) === 1);
    await redis.flushall();
    worker.workers.find((w) => w.name === "chat")!.resume();
    const calls = stack.emulator.calls;

    const again = await keyed(openai, "lost-job");

    expect(again.completion.object).toBe("chat.completion");
    expect(stack.emulator.calls).toBe(calls + 1);
    expect(await rowsFor(customerId)).toHaveLength(1);
    // The first request, whose job vanished, answers from the rerun (or asks its client to poll).
    const first = await pending;
    expect(first instanceof Error ? (first as { status?: number }).status : 200).not.toBe(500);
  });

  // Last: the FLUSHALL tests above wiped the schedules too, and workers re-create them on their own.
  it("purges expired claims on a schedule, also after Redis lost it", async () => {
    const { openai } = await stack.customer();
    const { requestId } = await keyed(openai, "to-expire");
    await stack
      .db("chat_requests")
      .where({ request_id: requestId })
      .update({ expires_at: new Date(0) });
    await waitFor(async () => !(await stack.db("chat_requests").where({ request_id: requestId }).first()), {
      timeoutMs: 15_000,
      what: "the expired claim to be purged",
    });
  });
});
