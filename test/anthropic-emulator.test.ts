import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import Anthropic from "@anthropic-ai/sdk";
import { loadConfig } from "../src/config.js";
import { startAnthropicEmulator, type AnthropicEmulator } from "../src/local/anthropic-emulator.js";
import { countText } from "../src/local/openai-emulator/prompt-tokens.js";

// The emulator speaks Anthropic's own protocol: checked through the official SDK, raw.

const KEY = "sk-ant-emulator-test";
let emu: AnthropicEmulator;
let client: Anthropic;

beforeAll(async () => {
  emu = await startAnthropicEmulator({ apiKey: KEY });
  client = new Anthropic({ apiKey: KEY, baseURL: emu.url, maxRetries: 0 });
});
afterAll(async () => {
  await emu.close();
});
afterEach(() => {
  emu.clearFaults();
  emu.setLatency(0);
});

const model = "claude-haiku-4-5";
const params = (content: string, extra: Partial<Anthropic.MessageCreateParamsNonStreaming> = {}) => ({
  model,
  max_tokens: 256,
  messages: [{ role: "user" as const, content }],
  ...extra,
});

describe("anthropic emulator: messages", () => {
  it("answers a message with Anthropic's usage fields", async () => {
    const msg = await client.messages.create(params("Count the meter events"));
    expect(msg).toMatchObject({ type: "message", role: "assistant", model, stop_reason: "end_turn" });
    expect(msg.content).toEqual([{ type: "text", text: "Echo: Count the meter events", citations: null }]);
    expect(msg.usage).toMatchObject({
      input_tokens: 3 + countText("user") + countText("Count the meter events"),
      output_tokens: countText("Echo: Count the meter events"),
      cache_creation_input_tokens: 0,
      cache_read_input_tokens: 0,
      output_tokens_details: null,
    });
  });

  it("accepts the key as x-api-key and refuses a wrong one with authentication_error", async () => {
    const res = await fetch(`${emu.url}/v1/messages`, {
      method: "POST",
      headers: { "x-api-key": KEY, "anthropic-version": "2023-06-01", "content-type": "application/json" },
      body: JSON.stringify(params("hi")),
    });
    expect(res.status).toBe(200);
    const wrong = new Anthropic({ apiKey: "nope", baseURL: emu.url, maxRetries: 0 });
    const err = await wrong.messages.create(params("hi")).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Anthropic.AuthenticationError);
    expect((err as InstanceType<typeof Anthropic.APIError>).type).toBe("authentication_error");
  });

  it("refuses a request without max_tokens, as Anthropic does", async () => {
    const body = {
      model,
      messages: [{ role: "user", content: "hi" }],
    } as unknown as Anthropic.MessageCreateParamsNonStreaming;
    await expect(client.messages.create(body)).rejects.toBeInstanceOf(Anthropic.BadRequestError);
  });

  it("writes a cache_control prefix on the first call and reads it on a repeat", async () => {
    const manual = "Tariff rules. ".repeat(500);
    const request = params("What is the tariff?", {
      system: [{ type: "text", text: manual, cache_control: { type: "ephemeral" } }],
    });
    const first = await client.messages.create(request);
    const second = await client.messages.create(request);
    const prefix = countText(manual);
    expect(first.usage).toMatchObject({ cache_creation_input_tokens: prefix, cache_read_input_tokens: 0 });
    expect(second.usage).toMatchObject({ cache_creation_input_tokens: 0, cache_read_input_tokens: prefix });
    expect(second.usage.input_tokens).toBe(first.usage.input_tokens);
    // Below Anthropic's minimum cacheable length nothing is cached.
    const short = params("hi", {
      system: [{ type: "text", text: "Short.", cache_control: { type: "ephemeral" } }],
    });
    expect((await client.messages.create(short)).usage.cache_creation_input_tokens).toBe(0);
  });

  it("thinks first when thinking is enabled and reports it inside output_tokens", async () => {
    const msg = await client.messages.create(
      params("Think about it", { max_tokens: 2048, thinking: { type: "enabled", budget_tokens: 1024 } }),
    );
    expect(msg.content.map((b) => b.type)).toEqual(["thinking", "text"]);
    const thinking = msg.usage.output_tokens_details?.thinking_tokens ?? 0;
    expect(thinking).toBeGreaterThan(0);
    expect(msg.usage.output_tokens).toBe(thinking + countText("Echo: Think about it"));
  });
});

describe("anthropic emulator: streams", () => {
  it("streams Anthropic's event types in order, usage on message_start and message_delta", async () => {
    const stream = await client.messages.create({ ...params("Stream four words please"), stream: true });
    const events: Anthropic.RawMessageStreamEvent[] = [];
    for await (const event of stream) events.push(event);
    const types = [...new Set(events.map((e) => e.type))];
    expect(types).toEqual([
      "message_start",
      "content_block_start",
      "content_block_delta",
      "content_block_stop",
      "message_delta",
      "message_stop",
    ]);
    const delta = events.find((e) => e.type === "message_delta");
    expect(delta).toMatchObject({
      delta: { stop_reason: "end_turn" },
      usage: { output_tokens: countText("Echo: Stream four words please") },
    });
    const start = events[0] as Anthropic.RawMessageStartEvent;
    expect(start.message.usage.input_tokens).toBeGreaterThan(0);
  });

  it("cuts a stream mid-way when told to, which the SDK reports as an error", async () => {
    emu.injectFault({ kind: "cut", afterDeltas: 1, times: 1 });
    const closed = new Promise<unknown>((resolve) => emu.events.once("request", resolve));
    const stream = await client.messages.create({ ...params("one two three four five six"), stream: true });
    const seen: string[] = [];
    await expect(
      (async () => {
        for await (const e of stream) seen.push(e.type);
      })(),
    ).rejects.toThrow();
    expect(seen).not.toContain("message_stop");
    expect(await closed).toMatchObject({ aborted: false, status: 200 });
  });
});

describe("anthropic emulator: faults", () => {
  it("answers injected statuses in Anthropic's error shape, the next N requests only", async () => {
    emu.setFault({ kind: "status", status: 529, times: 1 });
    emu.injectFault({ kind: "status", status: 500, times: 1 });
    const overloaded = await client.messages.create(params("hi")).catch((e: unknown) => e);
    expect(overloaded).toBeInstanceOf(Anthropic.OverloadedError);
    expect((overloaded as InstanceType<typeof Anthropic.APIError>).type).toBe("overloaded_error");
    await expect(client.messages.create(params("hi"))).rejects.toBeInstanceOf(Anthropic.InternalServerError);
    await expect(client.messages.create(params("hi"))).resolves.toMatchObject({ type: "message" });
  });

  it("adds latency", async () => {
    emu.setLatency(150);
    const started = performance.now();
    await client.messages.create(params("hi"));
    expect(performance.now() - started).toBeGreaterThanOrEqual(140);
  });
});

describe("config: Anthropic", () => {
  it("is configured only when ANTHROPIC_API_KEY is set, with an optional base URL", () => {
    expect(loadConfig({}).anthropic).toBeUndefined();
    expect(
      loadConfig({ ANTHROPIC_API_KEY: "sk-ant-x", ANTHROPIC_BASE_URL: "http://127.0.0.1:9/" }).anthropic,
    ).toEqual({
      apiKey: "sk-ant-x",
      baseUrl: "http://127.0.0.1:9/",
    });
    expect(() => loadConfig({ ANTHROPIC_API_KEY: "k", ANTHROPIC_BASE_URL: "ftp://x" })).toThrow(
      /ANTHROPIC_BASE_URL/,
    );
  });
});
