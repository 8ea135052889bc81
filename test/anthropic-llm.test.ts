import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type OpenAI from "openai";
import { PermanentError, RetryableError } from "../src/errors.js";
import { createAnthropicLlm } from "../src/llm/anthropic/client.js";
import { anthropicUsage } from "../src/llm/anthropic/usage.js";
import type { ChatRequest, Llm } from "../src/llm/client.js";
import {
  startAnthropicEmulator,
  type AnthropicEmulator,
  type AnthropicRequestRecord,
} from "../src/local/anthropic-emulator.js";
import { countText } from "../src/local/openai-emulator/prompt-tokens.js";

// Anthropic behind meterline's OpenAI-format Llm, through the official SDK against the emulator.

const KEY = "sk-ant-test";
let emu: AnthropicEmulator;
let llm: Llm;

beforeAll(async () => {
  emu = await startAnthropicEmulator({ apiKey: KEY });
  llm = createAnthropicLlm({ apiKey: KEY, baseURL: emu.url, timeoutMs: 10_000 });
});
afterAll(async () => {
  await emu.close();
});
afterEach(() => {
  emu.clearFaults();
  emu.setChunkDelay(0);
});

const model = "claude-sonnet-4-5";
const ask = (content: string, extra: Partial<ChatRequest> = {}): ChatRequest => ({
  model,
  messages: [{ role: "user", content }],
  ...extra,
});
/** The emulator's record of the request whose response is the last one it served. */
const lastRecord = () => emu.requests.at(-1) as AnthropicRequestRecord;
const sentBody = () => lastRecord().body as Record<string, unknown>;

async function collect(request: ChatRequest) {
  const chunks: OpenAI.ChatCompletionChunk[] = [];
  for await (const chunk of llm.stream(request)) chunks.push(chunk);
  return chunks;
}

describe("anthropicUsage: Anthropic's fields in meterline's taxonomy", () => {
  it("adds cache writes and reads to input tokens and keeps thinking inside output tokens", () => {
    const usage = anthropicUsage({
      input_tokens: 50,
      cache_creation_input_tokens: 1200,
      cache_read_input_tokens: 3000,
      output_tokens: 400,
      output_tokens_details: { thinking_tokens: 250 },
    });
    expect(usage).toEqual({
      prompt_tokens: 4250,
      completion_tokens: 400,
      total_tokens: 4650,
      prompt_tokens_details: { cached_tokens: 3000, cache_write_tokens: 1200 },
      completion_tokens_details: { reasoning_tokens: 250 },
    });
  });

  it("reads missing cache fields as zero and clamps an over-reported thinking count", () => {
    const usage = anthropicUsage({
      input_tokens: 10,
      cache_creation_input_tokens: null,
      cache_read_input_tokens: null,
      output_tokens: 5,
      output_tokens_details: { thinking_tokens: 9 },
    });
    expect(usage.prompt_tokens).toBe(10);
    expect(usage.prompt_tokens_details).toEqual({ cached_tokens: 0, cache_write_tokens: 0 });
    expect(usage.completion_tokens_details?.reasoning_tokens).toBe(5);
  });
});

describe("createAnthropicLlm: requests and answers", () => {
  it("answers a plain chat as a chat.completion with usage", async () => {
    const done = await llm.complete(ask("Summarise the quarterly usage report"));
    expect(done.object).toBe("chat.completion");
    expect(done.id).toMatch(/^msg_/);
    expect(done.model).toBe(model);
    expect(done.choices[0]?.message.content).toBe("Echo: Summarise the quarterly usage report");
    expect(done.choices[0]?.finish_reason).toBe("stop");
    const rec = lastRecord();
    expect(sentBody().max_tokens).toBe(4096); // Anthropic requires one; OpenAI's default is "as many as fit"
    expect(done.usage).toMatchObject({
      prompt_tokens: rec.inputTokens,
      completion_tokens: rec.outputTokens,
      prompt_tokens_details: { cached_tokens: 0, cache_write_tokens: 0 },
    });
    expect(rec.outputTokens).toBe(countText("Echo: Summarise the quarterly usage report"));
  });

  it("sends system and developer messages as system, and merges consecutive turns of one role", async () => {
    const done = await llm.complete({
      model,
      messages: [
        { role: "system", content: "You are terse." },
        { role: "developer", content: [{ type: "text", text: "Answer in English." }] },
        { role: "user", content: "Hello there" },
        { role: "assistant", content: "Hi." },
        { role: "user", content: "What is metering?" },
        { role: "user", content: "Be brief." },
      ],
      max_completion_tokens: 300,
      temperature: 0.5,
      top_p: 0.9,
      user: "end-user-7",
    });
    expect(done.choices[0]?.message.content).toBe("Echo: What is metering? Be brief.");
    expect(sentBody()).toMatchObject({
      max_tokens: 300,
      temperature: 0.5,
      top_p: 0.9,
      metadata: { user_id: "end-user-7" },
      system: [
        { type: "text", text: "You are terse." },
        { type: "text", text: "Answer in English." },
      ],
      messages: [
        { role: "user", content: [{ type: "text", text: "Hello there" }] },
        { role: "assistant", content: [{ type: "text", text: "Hi." }] },
        {
          role: "user",
          content: [
            { type: "text", text: "What is metering?" },
            { type: "text", text: "Be brief." },
          ],
        },
      ],
    });
  });

  it("sends data: URL images as base64 blocks and http URLs as url blocks, billed as prompt", async () => {
    const png = pngHeader(1000, 750);
    const dataUrl = `data:image/png;base64,${png}`;
    const text = await llm.complete({
      model,
      messages: [{ role: "user", content: [{ type: "text", text: "Describe" }] }],
    });
    const done = await llm.complete({
      model,
      messages: [
        {
          role: "user",
          content: [
            { type: "text", text: "Describe" },
            { type: "image_url", image_url: { url: dataUrl } },
            { type: "image_url", image_url: { url: "https://example.com/cat.jpg" } },
          ],
        },
      ],
    });
    expect((sentBody().messages as { content: unknown }[])[0]?.content).toEqual([
      { type: "text", text: "Describe" },
      { type: "image", source: { type: "base64", media_type: "image/png", data: png } },
      { type: "image", source: { type: "url", url: "https://example.com/cat.jpg" } },
    ]);
    // 1000×750 px is 1000 tokens by Anthropic's rule; a remote image is counted as the largest (1600).
    expect(done.usage!.prompt_tokens - text.usage!.prompt_tokens).toBe(1000 + 1600);
  });

  it("refuses what Anthropic cannot do with a 400 before calling it", async () => {
    const calls = emu.calls;
    const audio = ask("hi", { modalities: ["text", "audio"] });
    await expect(llm.complete(audio)).rejects.toMatchObject({ status: 400, code: "unsupported_parameter" });
    await expect(llm.complete(ask("hi", { n: 2 }))).rejects.toBeInstanceOf(PermanentError);
    expect(emu.calls).toBe(calls);
  });

  it("cuts the answer at a stop sequence (finish stop) and at max_tokens (finish length)", async () => {
    const stopped = await llm.complete(ask("alpha beta gamma delta", { stop: ["gamma", "zeta"] }));
    expect(sentBody().stop_sequences).toEqual(["gamma", "zeta"]);
    expect(stopped.choices[0]?.message.content).toBe("Echo: alpha beta ");
    expect(stopped.choices[0]?.finish_reason).toBe("stop");

    const cut = await llm.complete(ask("alpha beta gamma delta epsilon zeta eta theta", { max_tokens: 3 }));
    expect(cut.choices[0]?.finish_reason).toBe("length");
    expect(cut.usage?.completion_tokens).toBe(3);
  });
});

const weather: OpenAI.ChatCompletionTool = {
  type: "function",
  function: {
    name: "get_weather",
    description: "Current weather in a city",
    parameters: { type: "object", properties: { city: { type: "string" }, days: { type: "integer" } } },
  },
};

describe("createAnthropicLlm: tools", () => {
  it("round-trips a tool call: tool_use → tool_calls, then tool_calls and tool results back", async () => {
    const question = "Please use the tool for Paris";
    const first = await llm.complete(ask(question, { tools: [weather], tool_choice: "auto" }));
    expect(sentBody()).toMatchObject({
      tools: [
        {
          name: "get_weather",
          description: "Current weather in a city",
          input_schema: weather.function.parameters,
        },
      ],
      tool_choice: { type: "auto" },
    });
    const message = first.choices[0]!.message;
    expect(first.choices[0]?.finish_reason).toBe("tool_calls");
    const call = message.tool_calls![0]! as OpenAI.ChatCompletionMessageFunctionToolCall;
    expect(call.id).toMatch(/^toolu_/);
    expect(call.function.name).toBe("get_weather");
    expect(JSON.parse(call.function.arguments)).toEqual({ city: question, days: 1 });

    const second = await llm.complete({
      model,
      tools: [weather],
      messages: [
        { role: "user", content: question },
        { role: "assistant", content: message.content, tool_calls: message.tool_calls },
        { role: "tool", tool_call_id: call.id, content: "Sunny, 21 C" },
      ],
    });
    const turns = sentBody().messages as { role: string; content: unknown[] }[];
    expect(turns[1]).toMatchObject({
      role: "assistant",
      content: expect.arrayContaining([
        { type: "tool_use", id: call.id, name: "get_weather", input: { city: question, days: 1 } },
      ]),
    });
    expect(turns[2]).toEqual({
      role: "user",
      content: [{ type: "tool_result", tool_use_id: call.id, content: "Sunny, 21 C" }],
    });
    expect(second.choices[0]?.message.content).toBe("Echo: Sunny, 21 C");
    expect(second.choices[0]?.finish_reason).toBe("stop");
  });

  it("maps tool_choice required / a named function / parallel_tool_calls false", async () => {
    await llm.complete(ask("hi", { tools: [weather], tool_choice: "required", parallel_tool_calls: false }));
    expect(sentBody().tool_choice).toEqual({ type: "any", disable_parallel_tool_use: true });
    const named = await llm.complete(
      ask("hi", { tools: [weather], tool_choice: { type: "function", function: { name: "get_weather" } } }),
    );
    expect(sentBody().tool_choice).toEqual({ type: "tool", name: "get_weather" });
    expect(named.choices[0]?.finish_reason).toBe("tool_calls");
  });
});

describe("createAnthropicLlm: streams", () => {
  it("streams text deltas, a finish chunk and a final usage chunk equal to the plain answer's", async () => {
    const request = ask("Stream the quarterly usage report for the billing team please");
    const plain = await llm.complete(request);
    const chunks = await collect(request);
    expect(chunks[0]?.choices[0]?.delta).toEqual({ role: "assistant", content: "" });
    const text = chunks.map((c) => c.choices[0]?.delta.content ?? "").join("");
    expect(text).toBe(plain.choices[0]?.message.content);
    expect(chunks.filter((c) => c.choices[0]?.delta.content).length).toBeGreaterThan(1);
    expect(chunks.at(-2)?.choices[0]?.finish_reason).toBe("stop");
    const last = chunks.at(-1)!;
    expect(last.choices).toEqual([]);
    expect(last.usage).toEqual(plain.usage);
    expect(new Set(chunks.map((c) => c.id)).size).toBe(1);
    expect(last.id).toMatch(/^msg_/);
  });

  it("streams a tool call as tool_call deltas whose arguments join into the call's JSON", async () => {
    const chunks = await collect(ask("use the tool for Oslo", { tools: [weather] }));
    const calls = chunks.flatMap((c) => c.choices[0]?.delta.tool_calls ?? []);
    expect(calls[0]).toMatchObject({
      index: 0,
      type: "function",
      function: { name: "get_weather", arguments: "" },
    });
    expect(calls[0]?.id).toMatch(/^toolu_/);
    expect(calls.length).toBeGreaterThan(2);
    const args = calls.map((d) => d.function?.arguments ?? "").join("");
    expect(JSON.parse(args)).toEqual({ city: "use the tool for Oslo", days: 1 });
    expect(chunks.at(-2)?.choices[0]?.finish_reason).toBe("tool_calls");
    expect(chunks.at(-1)?.usage?.completion_tokens).toBe(lastRecord().outputTokens);
  });

  it("stops the emulator's stream when the caller aborts mid-way", async () => {
    emu.setChunkDelay(30);
    const controller = new AbortController();
    const closed = new Promise<AnthropicRequestRecord>((resolve) => emu.events.once("request", resolve));
    const chunks: OpenAI.ChatCompletionChunk[] = [];
    const long = "one two three four five six seven eight nine ten eleven twelve thirteen fourteen";
    for await (const chunk of llm.stream(ask(long), { signal: controller.signal })) {
      chunks.push(chunk);
      if (chunk.choices[0]?.delta.content) controller.abort();
    }
    const rec = await closed;
    expect(rec.aborted).toBe(true);
    expect(rec.outputTokens).toBeLessThan(countText(`Echo: ${long}`));
    expect(chunks.some((c) => c.usage)).toBe(false);
  });

  it("fails a stream the provider cut mid-way as retryable, never as a completion", async () => {
    emu.injectFault({ kind: "cut", afterDeltas: 1, times: 1 });
    await expect(collect(ask("one two three four five six seven eight"))).rejects.toBeInstanceOf(
      RetryableError,
    );
  });
});

describe("createAnthropicLlm: caching and thinking", () => {
  it("bills a cached prefix as a cache write first, then as a cache read", async () => {
    const manual = "Billing manual. ".repeat(400);
    const request = {
      model,
      messages: [
        {
          role: "system",
          content: [{ type: "text", text: manual, cache_control: { type: "ephemeral" } }],
        },
        { role: "user", content: "What does the manual say?" },
      ],
    } as ChatRequest;
    const prefix = countText(manual);
    expect(prefix).toBeGreaterThanOrEqual(1024);
    const write = await llm.complete(request);
    expect(sentBody().system).toEqual([{ type: "text", text: manual, cache_control: { type: "ephemeral" } }]);
    const read = await llm.complete(request);
    const rec = lastRecord();
    const total = rec.inputTokens + prefix;
    expect(write.usage).toMatchObject({
      prompt_tokens: total,
      prompt_tokens_details: { cached_tokens: 0, cache_write_tokens: prefix },
    });
    expect(read.usage).toMatchObject({
      prompt_tokens: total,
      prompt_tokens_details: { cached_tokens: prefix, cache_write_tokens: 0 },
    });
    expect(rec.cacheReadInputTokens).toBe(prefix);
  });

  it("turns reasoning_effort into extended thinking, counted as reasoning inside completion tokens", async () => {
    const done = await llm.complete(ask("Why meter usage?", { reasoning_effort: "low", max_tokens: 2000 }));
    expect(sentBody().thinking).toEqual({ type: "enabled", budget_tokens: 1024 });
    const content = done.choices[0]?.message.content ?? "";
    expect(content).toBe("Echo: Why meter usage?");
    const reasoning = done.usage?.completion_tokens_details?.reasoning_tokens ?? 0;
    expect(reasoning).toBeGreaterThan(0);
    expect(done.usage?.completion_tokens).toBe(reasoning + countText(content));

    const streamed = await collect(ask("Why meter usage?", { reasoning_effort: "low", max_tokens: 2000 }));
    expect(streamed.at(-1)?.usage).toEqual(done.usage);
  });

  it("leaves thinking out when its minimum budget does not fit under max_tokens", async () => {
    const done = await llm.complete(ask("Why?", { reasoning_effort: "high", max_tokens: 800 }));
    expect(sentBody().thinking).toBeUndefined();
    expect(done.usage?.completion_tokens_details?.reasoning_tokens).toBe(0);
  });
});

describe("createAnthropicLlm: errors", () => {
  it("classifies 429 and 529 overloaded as retryable, and the next attempt succeeds", async () => {
    emu.injectFault({ kind: "status", status: 429, times: 1 });
    emu.injectFault({ kind: "status", status: 529, times: 1 });
    await expect(llm.complete(ask("hi"))).rejects.toBeInstanceOf(RetryableError);
    await expect(llm.complete(ask("hi"))).rejects.toThrow(/529/);
    const done = await llm.complete(ask("hi"));
    expect(done.choices[0]?.message.content).toBe("Echo: hi");
  });

  it("fails a 400 permanently with the provider's status and safe message", async () => {
    const err = await llm.complete(ask("hi", { temperature: 1.5 })).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PermanentError);
    expect(err).toMatchObject({
      status: 400,
      type: "invalid_request_error",
      message: "temperature: range: 0..1",
    });
    emu.injectFault({ kind: "status", status: 404, message: "model: claude-x", times: 1 });
    await expect(llm.complete(ask("hi"))).rejects.toMatchObject({ status: 404, code: "not_found_error" });
  });

  it("reports rejected credentials as 502 upstream_auth", async () => {
    const wrong = createAnthropicLlm({ apiKey: "sk-ant-wrong", baseURL: emu.url, timeoutMs: 10_000 });
    await expect(wrong.complete(ask("hi"))).rejects.toMatchObject({ status: 502, code: "upstream_auth" });
  });
});

/** The first 24 bytes of a PNG of this size (what the size reader needs), base64. */
function pngHeader(width: number, height: number): string {
  const b = Buffer.alloc(24);
  b.writeUInt32BE(0x89504e47, 0);
  b.writeUInt32BE(0x0d0a1a0a, 4);
  b.writeUInt32BE(13, 8);
  b.write("IHDR", 12, "ascii");
  b.writeUInt32BE(width, 16);
  b.writeUInt32BE(height, 20);
  return b.toString("base64");
}
