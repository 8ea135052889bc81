import { describe, it, expect, beforeAll, afterAll, afterEach, vi } from "vitest";
import OpenAI from "openai";
import type { ChatCompletionCreateParamsNonStreaming } from "openai/resources/chat/completions";
import { encode, encodeChat } from "gpt-tokenizer";
import {
  startOpenAIEmulator,
  type EmulatorRequestRecord,
  type OpenAIEmulator,
} from "../src/local/openai-emulator.js";

let emu: OpenAIEmulator;
let client: OpenAI;

beforeAll(async () => {
  emu = await startOpenAIEmulator();
  client = new OpenAI({ baseURL: emu.url, apiKey: "x", maxRetries: 0 });
});
afterAll(async () => {
  await emu.close();
});
afterEach(() => {
  emu.clearFaults();
  emu.setLatency(0);
  emu.setChunkDelay(0);
  emu.setOmitUsage(false);
});

/** Resolves with the first finalized request record matching `pred` (emitted when its response closes). */
const nextRecord = (pred: (r: EmulatorRequestRecord) => boolean) =>
  new Promise<EmulatorRequestRecord>((resolve) => {
    const onRecord = (r: EmulatorRequestRecord) => {
      if (!pred(r)) return;
      emu.events.off("request", onRecord);
      resolve(r);
    };
    emu.events.on("request", onRecord);
  });

const messages = [
  { role: "system" as const, content: "You are terse." },
  { role: "user" as const, content: "Summarise the quarterly usage report for the billing team, please." },
];
const params: ChatCompletionCreateParamsNonStreaming = { model: "gpt-4o-mini", messages };

describe("openai emulator: completions", () => {
  it("answers deterministically with usage counted by gpt-tokenizer", async () => {
    const a = await client.chat.completions.create(params);
    const b = await client.chat.completions.create(params);
    const content = a.choices[0]?.message.content ?? "";
    expect(content).toBe("Echo: Summarise the quarterly usage report for the billing team, please.");
    expect(b.choices[0]?.message.content).toBe(content);
    expect(a.id).toMatch(/^chatcmpl-/);
    expect(a.id).not.toBe(b.id);
    expect(a.choices[0]?.finish_reason).toBe("stop");
    // documented prompt count: OpenAI cookbook formula == encodeChat(messages, "gpt-4o").length
    expect(a.usage?.prompt_tokens).toBe(encodeChat(messages, "gpt-4o").length);
    expect(a.usage?.completion_tokens).toBe(encode(content).length);
    expect(a.usage?.total_tokens).toBe(a.usage!.prompt_tokens + a.usage!.completion_tokens);
    expect(a.usage?.prompt_tokens_details).toEqual({ cached_tokens: 0 });
    expect(a.usage?.completion_tokens_details).toEqual({ reasoning_tokens: 0 });
    const rec = emu.requests.find((r) => r.id === a.id);
    expect(rec).toMatchObject({ status: 200, stream: false, aborted: false, model: "gpt-4o-mini" });
    expect(rec?.completionTokens).toBe(a.usage?.completion_tokens);
  });

  it("truncates to max_completion_tokens with finish_reason length", async () => {
    const r = await client.chat.completions.create({ ...params, max_completion_tokens: 5 });
    expect(r.choices[0]?.finish_reason).toBe("length");
    expect(r.usage?.completion_tokens).toBe(5);
    expect(encode(r.choices[0]?.message.content ?? "").length).toBe(5);
  });

  it("streams deltas that concatenate to the non-stream answer, then a matching usage chunk", async () => {
    const full = await client.chat.completions.create(params);
    const stream = await client.chat.completions.create({
      ...params,
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = "";
    let contentChunks = 0;
    const usages: unknown[] = [];
    const finishes: string[] = [];
    for await (const chunk of stream) {
      expect(chunk.object).toBe("chat.completion.chunk");
      const choice = chunk.choices[0];
      if (choice?.delta.content) {
        text += choice.delta.content;
        contentChunks++;
      }
      if (choice?.finish_reason) finishes.push(choice.finish_reason);
      if (chunk.usage) {
        expect(chunk.choices).toEqual([]);
        usages.push(chunk.usage);
      }
    }
    expect(text).toBe(full.choices[0]?.message.content);
    expect(contentChunks).toBeGreaterThan(1);
    expect(finishes).toEqual(["stop"]);
    expect(usages).toEqual([full.usage]);
  });

  it("reports reasoning tokens inside completion_tokens for reasoning models", async () => {
    const r = await client.chat.completions.create({ ...params, model: "o4-mini" });
    const visible = encode(r.choices[0]?.message.content ?? "").length;
    const reasoning = r.usage?.completion_tokens_details?.reasoning_tokens ?? 0;
    expect(reasoning).toBe(2 * visible);
    expect(r.usage?.completion_tokens).toBe(visible + reasoning);
    const small = await client.chat.completions.create({
      ...params,
      model: "o4-mini",
      max_completion_tokens: 10,
    });
    expect(small.usage?.completion_tokens).toBe(10);
    expect(small.choices[0]?.finish_reason).toBe("length");
  });

  it("reports cached_tokens for a repeated prompt of at least 1024 tokens only", async () => {
    const long = [{ role: "user" as const, content: "meter ".repeat(1100) + String(Date.now()) }];
    const first = await client.chat.completions.create({ model: "gpt-4o", messages: long });
    const second = await client.chat.completions.create({ model: "gpt-4o", messages: long });
    const prompt = first.usage!.prompt_tokens;
    expect(prompt).toBeGreaterThanOrEqual(1024);
    expect(first.usage?.prompt_tokens_details?.cached_tokens).toBe(0);
    expect(second.usage?.prompt_tokens_details?.cached_tokens).toBe(Math.floor(prompt / 128) * 128);
    await client.chat.completions.create(params);
    const shortAgain = await client.chat.completions.create(params);
    expect(shortAgain.usage?.prompt_tokens_details?.cached_tokens).toBe(0);
  });

  it("omitUsage drops usage from both answer shapes", async () => {
    emu.setOmitUsage(true);
    const r = await client.chat.completions.create(params);
    expect(r.choices[0]?.message.content).toMatch(/^Echo: /);
    expect(r.usage).toBeUndefined();
    const stream = await client.chat.completions.create({
      ...params,
      stream: true,
      stream_options: { include_usage: true },
    });
    let chunks = 0;
    for await (const chunk of stream) {
      chunks++;
      expect(chunk.usage ?? null).toBeNull();
      expect(chunk.choices).toHaveLength(1);
    }
    expect(chunks).toBeGreaterThan(2);
  });

  it("answers with a tool call when tool_choice forces one or the user asks, plain and streamed", async () => {
    const weather = {
      type: "function" as const,
      function: {
        name: "get_weather",
        parameters: { type: "object", properties: { city: { type: "string" }, days: { type: "integer" } } },
      },
    };
    const args = JSON.stringify({ city: "emulated", days: 1 });
    const forced = await client.chat.completions.create({
      ...params,
      tools: [weather],
      tool_choice: "required",
    });
    const choice = forced.choices[0]!;
    expect(choice.finish_reason).toBe("tool_calls");
    expect(choice.message.content).toBeNull();
    expect(choice.message.tool_calls).toEqual([
      {
        id: expect.stringMatching(/^call_/),
        type: "function",
        function: { name: "get_weather", arguments: args },
      },
    ]);
    expect(forced.usage?.completion_tokens).toBe(encode("get_weather").length + encode(args).length);

    const ask = [{ role: "user" as const, content: "Please use the tool." }];
    const stream = await client.chat.completions.create({
      model: "gpt-4o-mini",
      messages: ask,
      tools: [weather],
      stream: true,
      stream_options: { include_usage: true },
    });
    let streamed = "";
    let finish: string | null | undefined;
    let usage: OpenAI.CompletionUsage | undefined;
    for await (const chunk of stream) {
      streamed += chunk.choices[0]?.delta?.tool_calls?.[0]?.function?.arguments ?? "";
      finish = chunk.choices[0]?.finish_reason ?? finish;
      usage = chunk.usage ?? usage;
    }
    expect([streamed, finish]).toEqual([args, "tool_calls"]);
    expect(usage?.completion_tokens).toBe(forced.usage?.completion_tokens);

    // Tools on offer are not a call: the model answers in text unless forced or asked.
    const offered = await client.chat.completions.create({ ...params, tools: [weather] });
    expect(offered.choices[0]?.finish_reason).toBe("stop");
    const refused = await client.chat.completions.create({
      model: "gpt-4o-mini",
      messages: ask,
      tools: [weather],
      tool_choice: "none",
    });
    expect(refused.choices[0]?.message.tool_calls).toBeUndefined();
  });

  it("answers what it does not emulate with OpenAI's 404", async () => {
    const err = await client.models.list().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.NotFoundError);
    expect((err as Error).message).toContain("Invalid URL (GET /v1/models)");
  });
});

describe("openai emulator: errors and faults", () => {
  it("validates like OpenAI", async () => {
    const noModel = client.chat.completions.create({ ...params, model: "" });
    await expect(noModel).rejects.toBeInstanceOf(OpenAI.BadRequestError);
    const err = await client.chat.completions.create({ ...params, messages: [] }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.BadRequestError);
    expect((err as InstanceType<typeof OpenAI.BadRequestError>).param).toBe("messages");
    expect((err as InstanceType<typeof OpenAI.BadRequestError>).type).toBe("invalid_request_error");
  });

  it("status faults: two 429s then success; 400 carries the injected message", async () => {
    const before = emu.calls;
    emu.injectFault({ kind: "status", status: 429, times: 2 });
    await expect(client.chat.completions.create(params)).rejects.toBeInstanceOf(OpenAI.RateLimitError);
    await expect(client.chat.completions.create(params)).rejects.toBeInstanceOf(OpenAI.RateLimitError);
    await expect(client.chat.completions.create(params)).resolves.toHaveProperty("object", "chat.completion");
    expect(emu.calls - before).toBe(3);
    expect(emu.requests.slice(-3).map((r) => r.status)).toEqual([429, 429, 200]);

    emu.injectFault({ kind: "status", status: 400, message: "bad things", code: "nope", times: 1 });
    const err = await client.chat.completions.create(params).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.BadRequestError);
    expect((err as Error).message).toContain("bad things");
    expect((err as InstanceType<typeof OpenAI.BadRequestError>).code).toBe("nope");
  });

  it("retries a 429 immediately when the SDK is allowed to retry", async () => {
    const retrying = new OpenAI({ baseURL: emu.url, apiKey: "x", maxRetries: 2 });
    emu.injectFault({ kind: "status", status: 429, times: 2 });
    const started = Date.now();
    await expect(retrying.chat.completions.create(params)).resolves.toHaveProperty(
      "object",
      "chat.completion",
    );
    expect(Date.now() - started).toBeLessThan(400); // SDK default backoff would be ≥ 0.5 s + 1 s
  });

  it("drop fault surfaces as APIConnectionError", async () => {
    emu.injectFault({ kind: "drop", times: 1 });
    const rec = nextRecord((r) => r.model === "drop-probe");
    await expect(client.chat.completions.create({ ...params, model: "drop-probe" })).rejects.toBeInstanceOf(
      OpenAI.APIConnectionError,
    );
    expect(await rec).toMatchObject({ status: 0, aborted: false });
    await expect(client.chat.completions.create(params)).resolves.toHaveProperty("object", "chat.completion");
  });

  it("requires the configured API key", async () => {
    const guarded = await startOpenAIEmulator({ apiKey: "sk-test" });
    try {
      const bad = new OpenAI({ baseURL: guarded.url, apiKey: "wrong", maxRetries: 0 });
      await expect(bad.chat.completions.create(params)).rejects.toBeInstanceOf(OpenAI.AuthenticationError);
      const good = new OpenAI({ baseURL: guarded.url, apiKey: "sk-test", maxRetries: 0 });
      await expect(good.chat.completions.create(params)).resolves.toHaveProperty("object", "chat.completion");
      expect(guarded.calls).toBe(2);
    } finally {
      await guarded.close();
    }
  });

  it("hang fault never answers, and close() releases hung and latency-delayed requests promptly", async () => {
    const hung = await startOpenAIEmulator();
    const c = new OpenAI({ baseURL: hung.url, apiKey: "x", maxRetries: 0 });
    hung.injectFault({ kind: "hang", times: 1 });
    const hanging = c.chat.completions.create(params).catch((e: unknown) => e);
    await vi.waitFor(() => expect(hung.calls).toBe(1));
    hung.setLatency(60_000);
    const delayed = c.chat.completions.create(params).catch((e: unknown) => e);
    await vi.waitFor(() => expect(hung.calls).toBe(2));
    const started = Date.now();
    await hung.close();
    expect(Date.now() - started).toBeLessThan(1000);
    expect(await hanging).toBeInstanceOf(OpenAI.APIConnectionError);
    expect(await delayed).toBeInstanceOf(OpenAI.APIConnectionError);
    expect(hung.requests.map((r) => [r.status, r.aborted])).toEqual([
      [0, true],
      [0, true],
    ]);
  });
});

describe("openai emulator: streaming abort", () => {
  it("records an aborted stream with only the tokens actually sent", async () => {
    const long = [
      { role: "user" as const, content: Array.from({ length: 40 }, (_, i) => `word${i}`).join(" ") },
    ];
    const full = await client.chat.completions.create({ model: "gpt-4o-mini", messages: long });
    emu.setChunkDelay(20);
    const ac = new AbortController();
    const rec = nextRecord((r) => r.stream);
    const stream = await client.chat.completions.create(
      { model: "gpt-4o-mini", messages: long, stream: true, max_tokens: 4000 },
      { signal: ac.signal },
    );
    const seen = await (async () => {
      try {
        for await (const chunk of stream) {
          if (chunk.choices[0]?.delta.content) {
            ac.abort();
            return "aborted-after-content";
          }
        }
        return "completed";
      } catch (e) {
        return e instanceof OpenAI.APIUserAbortError ? "aborted-after-content" : e;
      }
    })();
    expect(seen).toBe("aborted-after-content");
    const r = await rec;
    expect(r).toMatchObject({ stream: true, aborted: true, status: 200 });
    expect(r.completionTokens).toBeGreaterThan(0);
    expect(r.completionTokens).toBeLessThan(full.usage!.completion_tokens);
    // Asserting that nothing more is generated needs a time window (there is no event for "nothing"):
    // 5 chunk intervals would have added ≥ 5 more chunks had the server kept going.
    const sentAtAbort = r.completionTokens;
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(r.completionTokens).toBe(sentAtAbort);
  });
});

describe("openai emulator: control endpoint", () => {
  const configure = (body: unknown) =>
    fetch(new URL("/_emulator/config", emu.url), {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
    });

  it("configures latency and usage over HTTP", async () => {
    const res = await configure({ latencyMs: 60, omitUsage: true });
    expect(await res.json()).toEqual({ latencyMs: 60, chunkDelayMs: 0, omitUsage: true });
    const started = performance.now();
    const r = await client.chat.completions.create(params);
    expect(performance.now() - started).toBeGreaterThanOrEqual(55);
    expect(r.usage).toBeUndefined();
  });

  it("refuses a config that is not an object with OpenAI's 400", async () => {
    const res = await configure([1, 2]);
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ error: { message: "config must be an object" } });
  });
});
