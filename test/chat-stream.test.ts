import { describe, expect, it } from "vitest";
import { pollUntilFinished } from "../src/queues/chat-replies.js";
import type { ChatCompletion } from "../src/llm/client.js";
import OpenAI from "openai";
import { countTokens } from "gpt-tokenizer";
import { useStack, waitFor } from "./helpers/stack.js";
import type { EmulatorRequestRecord } from "../src/local/openai-emulator.js";
import { chatStreamKey } from "../src/chat/stream/protocol.js";

const stack = useStack({ env: { CHAT_ATTEMPTS: "3" } });

const rowsFor = (customerId: string) => stack.db("usage_events").where({ customer_id: customerId });
const LONG = Array.from({ length: 40 }, (_, i) => `word${i}`).join(" ");
const ask = (content: string) => ({ model: "gpt-4o-mini", messages: [{ role: "user" as const, content }] });

describe("a streamed chat", () => {
  it("streams through the official SDK, with a usage chunk that matches the one usage row", async () => {
    const { customerId, openai } = await stack.customer();
    const stream = await openai.chat.completions.create({
      ...ask(LONG),
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = "";
    let usage: OpenAI.CompletionUsage | undefined;
    let chunks = 0;
    for await (const chunk of stream) {
      chunks++;
      text += chunk.choices[0]?.delta?.content ?? "";
      if (chunk.usage) usage = chunk.usage;
    }

    expect(chunks).toBeGreaterThan(3);
    expect(text).toBe(`Echo: ${LONG}`); // the emulator echoes up to 40 words of the last user message
    expect(usage).toBeDefined();
    const rows = await rowsFor(customerId);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({
      prompt_tokens: usage!.prompt_tokens,
      completion_tokens: usage!.completion_tokens,
      billable_tokens: usage!.total_tokens,
      source: "provider",
    });
  });

  it("hides the usage chunk from a client that did not ask for it, but still bills from it", async () => {
    const { customerId, openai } = await stack.customer();
    const stream = await openai.chat.completions.create({ ...ask("no usage please"), stream: true });
    const chunks: OpenAI.ChatCompletionChunk[] = [];
    for await (const chunk of stream) chunks.push(chunk);

    expect(chunks.every((c) => c.choices.length === 1 && !c.usage)).toBe(true);
    const record = stack.emulator.requests.findLast((r) => r.stream)!;
    const [row] = await rowsFor(customerId);
    expect(row).toMatchObject({ completion_tokens: record.completionTokens, source: "provider" });
  });

  it("bills an estimate, marked so, when the provider sends no usage chunk", async () => {
    const { customerId, openai } = await stack.customer();
    stack.emulator.setOmitUsage(true);
    try {
      const stream = await openai.chat.completions.create({ ...ask(LONG), stream: true });
      for await (const _ of stream);
    } finally {
      stack.emulator.setOmitUsage(false);
    }
    const record = stack.emulator.requests.findLast((r) => r.stream)!;
    const rows = await rowsFor(customerId);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ source: "estimated", completion_tokens: record.completionTokens });
    expect(rows[0].prompt_tokens).toBeGreaterThan(0);
  });

  it("stops the generation when the client disconnects and bills the tokens produced, once", async () => {
    const { customerId, openai } = await stack.customer();
    // Slow chunks: the worker stops the provider well before its next chunk, so the tokens the
    // provider sent are exactly the tokens the worker saw.
    stack.emulator.setChunkDelay(200);
    const closed = new Promise<EmulatorRequestRecord>((resolve) =>
      stack.emulator.events.on("request", (r: EmulatorRequestRecord) => r.stream && resolve(r)),
    );
    try {
      const stream = await openai.chat.completions.create({ ...ask(LONG), stream: true });
      let seen = 0;
      // Leaving the loop closes the HTTP response: the SDK aborts its request.
      for await (const chunk of stream) if (chunk.choices[0]?.delta?.content && ++seen === 3) break;
      const record = await closed;

      expect(record.aborted).toBe(true);
      const full = stack.emulator.requests.find((r) => r.stream && !r.aborted)?.completionTokens ?? Infinity;
      expect(record.completionTokens).toBeLessThan(full);
      const row = await waitFor(async () => (await rowsFor(customerId))[0], { what: "the usage row" });
      expect(row).toMatchObject({ source: "estimated", completion_tokens: record.completionTokens });
      expect(row.prompt_tokens).toBeGreaterThan(0);
      expect(await rowsFor(customerId)).toHaveLength(1);
    } finally {
      stack.emulator.setChunkDelay(0);
    }
  });

  it("answers a provider 400 before any output with that status, and bills nothing", async () => {
    const { customerId, openai } = await stack.customer();
    stack.emulator.injectFault({ kind: "status", status: 400, times: 1, message: "Bad prompt." });
    const err = await openai.chat.completions.create({ ...ask("bad"), stream: true }).catch((e) => e);
    expect(err).toBeInstanceOf(OpenAI.BadRequestError);
    expect(err.error).toMatchObject({ message: "Bad prompt." });
    expect(await rowsFor(customerId)).toHaveLength(0);
  });

  it("replays the same stream for a repeated Idempotency-Key without calling the LLM again", async () => {
    const { customerId, openai } = await stack.customer();
    const collect = async () => {
      const stream = await openai.chat.completions.create(
        { ...ask("replay me"), stream: true },
        { headers: { "Idempotency-Key": "stream-1" } },
      );
      let text = "";
      for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? "";
      return text;
    };
    const before = stack.emulator.calls;
    const first = await collect();
    const second = await collect();
    expect(second).toBe(first);
    // Once the relayed chunks expired from Redis, the replay comes from the finished job.
    const requestId = (await stack.web.queues.chat.getJobs(["completed"])).find(
      (j) => j.data.customerId === customerId,
    )!.id!;
    expect(await stack.web.redis.del(chatStreamKey(stack.config, requestId))).toBe(1);
    expect(await collect()).toBe(first);
    expect(stack.emulator.calls - before).toBe(1);
    expect(await rowsFor(customerId)).toHaveLength(1);
  });

  it("settles a stream a dead worker began: the retry bills what was relayed and tells the client", async () => {
    const { customerId, key } = await stack.customer();
    // What a worker killed mid-answer leaves behind: a job and a stream with some chunks, no end.
    const requestId = "chat_deadworkerstream0001";
    const chunk = (content: string) =>
      JSON.stringify({
        id: "chatcmpl-x",
        object: "chat.completion.chunk",
        created: 1,
        model: "gpt-4o-mini",
        choices: [{ index: 0, delta: { content }, finish_reason: null }],
      });
    const streamKey = chatStreamKey(stack.config, requestId);
    await stack.web.redis.xadd(streamKey, "*", "t", "chunk", "d", chunk("Hello there, "));
    await stack.web.redis.xadd(streamKey, "*", "t", "chunk", "d", chunk("general Kenobi"));
    const before = stack.emulator.calls;
    const job = await stack.web.queues.chat.add(
      "chat",
      {
        requestId,
        customerId,
        planId: "usage",
        request: ask("anything"),
        bodyHash: "x",
        receivedAt: new Date().toISOString(),
        stream: true,
      },
      { jobId: requestId },
    );
    const completion = (await pollUntilFinished(stack.web.queues.chat, job.id!, 10_000)) as ChatCompletion;

    expect(completion.choices[0]!.message.content).toBe("Hello there, general Kenobi");
    expect(stack.emulator.calls).toBe(before);
    const rows = await rowsFor(customerId);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({
      source: "estimated",
      completion_tokens: countTokens("Hello there, general Kenobi"),
    });
    const res = await fetch(`${stack.url}/v1/chats/${requestId}`, {
      headers: { authorization: `Bearer ${key}` },
    });
    expect(((await res.json()) as { status: string }).status).toBe("succeeded");
    const entries = await stack.web.redis.xrange(streamKey, "-", "+");
    const types = entries.map(([, fields]) => fields[1]);
    expect(types.slice(-2)).toEqual(["error", "end"]);
  });
});
