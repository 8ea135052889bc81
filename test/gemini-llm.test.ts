import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type OpenAI from "openai";
import { PermanentError, RetryableError } from "../src/errors.js";
import type { ChatRequest, Llm } from "../src/llm/client.js";
import { createGeminiLlm, geminiUsage } from "../src/llm/gemini/client.js";
import {
  startGeminiEmulator,
  type GeminiEmulator,
  type GeminiRequestRecord,
} from "../src/local/gemini-emulator.js";

// The Gemini adapter through the official @google/genai SDK against the emulator, over real HTTP.

let emu: GeminiEmulator;
let llm: Llm;

beforeAll(async () => {
  emu = await startGeminiEmulator({ apiKey: "gemini-test-key" });
  llm = createGeminiLlm({ apiKey: "gemini-test-key", baseURL: emu.url, timeoutMs: 10_000 });
});
afterAll(async () => {
  await emu.close();
});
afterEach(() => {
  emu.clearFaults();
  emu.setLatency(0);
  emu.setChunkDelay(0);
});

type Body = {
  contents: { role: string; parts: Record<string, unknown>[] }[];
  systemInstruction?: { parts: { text: string }[] };
  generationConfig?: Record<string, unknown>;
  tools?: unknown[];
  toolConfig?: unknown;
};
const lastBody = () => emu.requests.at(-1)?.body as Body;
const lastRecord = () => emu.requests.at(-1) as GeminiRequestRecord;

/** Resolves with the first finalized request record matching `pred` (emitted when its response closes). */
const nextRecord = (pred: (r: GeminiRequestRecord) => boolean) =>
  new Promise<GeminiRequestRecord>((resolve) => {
    const onRecord = (r: GeminiRequestRecord) => {
      if (!pred(r)) return;
      emu.events.off("request", onRecord);
      resolve(r);
    };
    emu.events.on("request", onRecord);
  });

const ask = (content: string, extra: Partial<ChatRequest> = {}): ChatRequest => ({
  model: "gemini-2.5-flash",
  messages: [{ role: "user", content }],
  ...extra,
});

async function collect(request: ChatRequest, signal?: AbortSignal) {
  const chunks: OpenAI.ChatCompletionChunk[] = [];
  for await (const chunk of llm.stream(request, { signal })) chunks.push(chunk);
  return chunks;
}

const weather: OpenAI.ChatCompletionTool = {
  type: "function",
  function: {
    name: "get_weather",
    description: "The weather in a city",
    parameters: { type: "object", properties: { city: { type: "string" }, days: { type: "integer" } } },
  },
};

describe("geminiUsage: Gemini's usage fields in meterline's taxonomy", () => {
  it("keeps cached tokens inside prompt tokens, counts thinking and tool-use prompt tokens", () => {
    const usage = geminiUsage({
      promptTokenCount: 1_500,
      cachedContentTokenCount: 1_024,
      toolUsePromptTokenCount: 7,
      candidatesTokenCount: 20,
      thoughtsTokenCount: 100,
      totalTokenCount: 1_627,
    });
    expect(usage).toEqual({
      prompt_tokens: 1_507,
      completion_tokens: 120,
      total_tokens: 1_627,
      prompt_tokens_details: { cached_tokens: 1_024, cache_write_tokens: 0 },
      completion_tokens_details: { reasoning_tokens: 100 },
    });
  });

  it("reads absent fields as zero", () => {
    expect(geminiUsage({ promptTokenCount: 5 })).toEqual({
      prompt_tokens: 5,
      completion_tokens: 0,
      total_tokens: 5,
      prompt_tokens_details: { cached_tokens: 0, cache_write_tokens: 0 },
      completion_tokens_details: { reasoning_tokens: 0 },
    });
  });
});

describe("gemini: completions", () => {
  it("answers a plain chat with the emulator's usage, mapped", async () => {
    const completion = await llm.complete(ask("Summarise the quarterly usage report, please."));
    const rec = lastRecord();
    expect(completion.object).toBe("chat.completion");
    expect(completion.model).toBe("gemini-2.5-flash");
    expect(completion.choices[0]?.message.content).toBe(
      "Echo: Summarise the quarterly usage report, please.",
    );
    expect(completion.choices[0]?.finish_reason).toBe("stop");
    expect(completion.usage).toEqual({
      prompt_tokens: rec.promptTokens,
      completion_tokens: rec.candidatesTokens,
      total_tokens: rec.promptTokens + rec.candidatesTokens,
      prompt_tokens_details: { cached_tokens: 0, cache_write_tokens: 0 },
      completion_tokens_details: { reasoning_tokens: 0 },
    });
    expect(rec.candidatesTokens).toBeGreaterThan(0);
  });

  it("sends system and developer messages as the systemInstruction", async () => {
    await llm.complete({
      model: "gemini-2.5-flash",
      messages: [
        { role: "system", content: "You are terse." },
        { role: "developer", content: [{ type: "text", text: "Answer in French." }] },
        { role: "user", content: "Hello" },
      ],
    });
    const body = lastBody();
    expect(body.systemInstruction?.parts).toEqual([
      { text: "You are terse." },
      { text: "Answer in French." },
    ]);
    expect(body.contents).toEqual([{ role: "user", parts: [{ text: "Hello" }] }]);
  });

  it("sends a multi-turn chat with assistant turns as role model", async () => {
    const completion = await llm.complete({
      model: "gemini-2.5-pro",
      messages: [
        { role: "user", content: "First question" },
        { role: "assistant", content: "First answer" },
        { role: "user", content: "Second question" },
      ],
    });
    expect(lastBody().contents).toEqual([
      { role: "user", parts: [{ text: "First question" }] },
      { role: "model", parts: [{ text: "First answer" }] },
      { role: "user", parts: [{ text: "Second question" }] },
    ]);
    expect(completion.choices[0]?.message.content).toBe("Echo: Second question");
  });

  it("sends a data: image inline and an http image as fileData (Google fetches it, meterline does not)", async () => {
    const png =
      "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==";
    await llm.complete({
      model: "gemini-2.5-flash",
      messages: [
        {
          role: "user",
          content: [
            { type: "text", text: "What is in these?" },
            { type: "image_url", image_url: { url: `data:image/png;base64,${png}` } },
            { type: "image_url", image_url: { url: "https://example.test/cat.webp?size=2" } },
          ],
        },
      ],
    });
    expect(lastBody().contents[0]?.parts).toEqual([
      { text: "What is in these?" },
      { inlineData: { mimeType: "image/png", data: png } },
      { fileData: { fileUri: "https://example.test/cat.webp?size=2", mimeType: "image/webp" } },
    ]);
    // Gemini bills each small image 258 tokens.
    const textOnly = await llm.complete(ask("What is in these?"));
    expect(lastRecord().promptTokens).toBe(textOnly.usage!.prompt_tokens);
    expect(emu.requests.at(-2)!.promptTokens - textOnly.usage!.prompt_tokens).toBe(2 * 258);
  });

  it("maps max_tokens to maxOutputTokens and MAX_TOKENS to length", async () => {
    const completion = await llm.complete(
      ask("one two three four five six seven eight nine ten", { max_tokens: 3 }),
    );
    expect(lastBody().generationConfig?.maxOutputTokens).toBe(3);
    expect(completion.choices[0]?.finish_reason).toBe("length");
    expect(completion.usage?.completion_tokens).toBe(3);
    await llm.complete(ask("again", { max_completion_tokens: 7, max_tokens: 99 }));
    expect(lastBody().generationConfig?.maxOutputTokens).toBe(7);
  });

  it("maps stop to stopSequences, temperature and top_p to theirs", async () => {
    const completion = await llm.complete(
      ask("alpha beta STOP gamma", { stop: ["STOP", "never"], temperature: 0.3, top_p: 0.9 }),
    );
    expect(lastBody().generationConfig).toMatchObject({
      stopSequences: ["STOP", "never"],
      temperature: 0.3,
      topP: 0.9,
    });
    expect(completion.choices[0]?.message.content).toBe("Echo: alpha beta ");
    expect(completion.choices[0]?.finish_reason).toBe("stop");
  });

  it("reports an implicit cache read of a repeated prefix as cached prompt tokens, no write", async () => {
    const report = "The quarterly usage report lists every customer and model. ".repeat(120);
    const first = await llm.complete(ask(report));
    expect(first.usage?.prompt_tokens).toBeGreaterThan(1024);
    expect(first.usage?.prompt_tokens_details).toEqual({ cached_tokens: 0, cache_write_tokens: 0 });
    const second = await llm.complete({
      model: "gemini-2.5-flash",
      messages: [
        { role: "user", content: report },
        { role: "assistant", content: first.choices[0]!.message.content! },
        { role: "user", content: "And the totals?" },
      ],
    });
    const rec = lastRecord();
    // The prefix the first request sent is read from cache, and is part of the prompt tokens.
    expect(rec.cachedTokens).toBe(first.usage!.prompt_tokens);
    expect(second.usage?.prompt_tokens).toBe(rec.promptTokens);
    expect(second.usage?.prompt_tokens_details).toEqual({
      cached_tokens: first.usage!.prompt_tokens,
      cache_write_tokens: 0,
    });
  });

  it("counts thinking tokens as completion and reasoning tokens (reasoning_effort → thinkingBudget)", async () => {
    const completion = await llm.complete(ask("Think about the invoice totals", { reasoning_effort: "low" }));
    const rec = lastRecord();
    expect(lastBody().generationConfig?.thinkingConfig).toEqual({ thinkingBudget: 1024 });
    expect(rec.thoughtsTokens).toBeGreaterThan(0);
    expect(completion.usage?.completion_tokens_details?.reasoning_tokens).toBe(rec.thoughtsTokens);
    expect(completion.usage?.completion_tokens).toBe(rec.candidatesTokens + rec.thoughtsTokens);
    expect(completion.choices[0]?.message.content).toBe("Echo: Think about the invoice totals");
  });
});

describe("gemini: tools", () => {
  it("round-trips a tool call and its result", async () => {
    const first = await llm.complete(
      ask("Please use the tool for Paris", { tools: [weather], tool_choice: "auto" }),
    );
    expect(lastBody().tools).toEqual([
      {
        functionDeclarations: [
          {
            name: "get_weather",
            description: "The weather in a city",
            parametersJsonSchema: weather.function.parameters,
          },
        ],
      },
    ]);
    const choice = first.choices[0]!;
    expect(choice.finish_reason).toBe("tool_calls");
    expect(choice.message.content).toBeNull();
    const call = choice.message.tool_calls?.[0] as OpenAI.ChatCompletionMessageFunctionToolCall;
    expect(call.type).toBe("function");
    expect(call.function.name).toBe("get_weather");
    expect(JSON.parse(call.function.arguments)).toEqual({ city: "emulated", days: 1 });

    const second = await llm.complete({
      model: "gemini-2.5-flash",
      tools: [weather],
      messages: [
        { role: "user", content: "Please use the tool for Paris" },
        { role: "assistant", content: null, tool_calls: [call] },
        { role: "tool", tool_call_id: call.id, content: "sunny, 21C" },
      ],
    });
    expect(lastBody().contents.slice(1)).toEqual([
      {
        role: "model",
        parts: [{ functionCall: { id: call.id, name: "get_weather", args: { city: "emulated", days: 1 } } }],
      },
      {
        role: "user",
        parts: [
          { functionResponse: { id: call.id, name: "get_weather", response: { output: "sunny, 21C" } } },
        ],
      },
    ]);
    expect(second.choices[0]?.message.content).toBe('Tool said: {"output":"sunny, 21C"}');
    expect(second.choices[0]?.finish_reason).toBe("stop");
  });

  it("hands a thinking model's thoughtSignature back with its tool call", async () => {
    const first = await llm.complete(ask("use the tool", { tools: [weather], reasoning_effort: "low" }));
    const call = first.choices[0]?.message.tool_calls?.[0] as OpenAI.ChatCompletionMessageFunctionToolCall & {
      extra_content?: { google?: { thought_signature?: string } };
    };
    const signature = call.extra_content?.google?.thought_signature;
    expect(signature).toBe(Buffer.from(`emulated-thought-${lastRecord().thoughtsTokens}`).toString("base64"));
    await llm.complete({
      model: "gemini-2.5-flash",
      tools: [weather],
      messages: [
        { role: "user", content: "use the tool" },
        { role: "assistant", content: null, tool_calls: [call] },
        { role: "tool", tool_call_id: call.id, content: "rain" },
      ],
    });
    expect(lastBody().contents[1]?.parts[0]).toMatchObject({ thoughtSignature: signature });
  });

  it("maps tool_choice to toolConfig: none, required and a named function", async () => {
    const none = await llm.complete(ask("Please use the tool", { tools: [weather], tool_choice: "none" }));
    expect(lastBody().toolConfig).toEqual({ functionCallingConfig: { mode: "NONE" } });
    expect(none.choices[0]?.finish_reason).toBe("stop");
    const required = await llm.complete(ask("Weather?", { tools: [weather], tool_choice: "required" }));
    expect(lastBody().toolConfig).toEqual({ functionCallingConfig: { mode: "ANY" } });
    expect(required.choices[0]?.finish_reason).toBe("tool_calls");
    await llm.complete(
      ask("Weather?", {
        tools: [weather],
        tool_choice: { type: "function", function: { name: "get_weather" } },
      }),
    );
    expect(lastBody().toolConfig).toEqual({
      functionCallingConfig: { mode: "ANY", allowedFunctionNames: ["get_weather"] },
    });
  });

  it("refuses a tool result that answers no call, before calling Gemini", async () => {
    const calls = emu.requests.length;
    const refused = await llm
      .complete({
        model: "gemini-2.5-flash",
        messages: [{ role: "tool", tool_call_id: "call_x", content: "?" }],
      })
      .catch((err: unknown) => err);
    expect(refused).toBeInstanceOf(PermanentError);
    expect((refused as PermanentError).status).toBe(400);
    expect(emu.requests.length).toBe(calls);
  });
});

describe("gemini: streams", () => {
  it("streams text deltas, a finish chunk and the usage chunk last", async () => {
    const request = ask("Stream the monthly invoice summary for every customer on the pro plan");
    const chunks = await collect(request);
    const rec = lastRecord();
    expect(rec.stream).toBe(true);
    expect(chunks[0]?.choices[0]?.delta).toEqual({ role: "assistant", content: "" });
    const deltas = chunks.map((c) => c.choices[0]?.delta.content ?? "").filter(Boolean);
    expect(deltas.length).toBeGreaterThan(2);
    expect(deltas.join("")).toBe(
      "Echo: Stream the monthly invoice summary for every customer on the pro plan",
    );
    expect(chunks.at(-2)?.choices[0]?.finish_reason).toBe("stop");
    const usageChunk = chunks.at(-1)!;
    expect(usageChunk.choices).toEqual([]);
    expect(usageChunk.usage).toEqual({
      prompt_tokens: rec.promptTokens,
      completion_tokens: rec.candidatesTokens,
      total_tokens: rec.promptTokens + rec.candidatesTokens,
      prompt_tokens_details: { cached_tokens: 0, cache_write_tokens: 0 },
      completion_tokens_details: { reasoning_tokens: 0 },
    });
    expect(new Set(chunks.map((c) => c.id)).size).toBe(1);
  });

  it("streams a tool call as a tool-call delta, finish tool_calls, then usage", async () => {
    const chunks = await collect(ask("use the tool for Oslo", { tools: [weather] }));
    const calls = chunks.flatMap((c) => c.choices[0]?.delta.tool_calls ?? []);
    expect(calls).toHaveLength(1);
    expect(calls[0]).toMatchObject({ index: 0, type: "function", function: { name: "get_weather" } });
    expect(JSON.parse(calls[0]!.function!.arguments!)).toEqual({ city: "emulated", days: 1 });
    expect(chunks.at(-2)?.choices[0]?.finish_reason).toBe("tool_calls");
    expect(chunks.at(-1)?.usage?.completion_tokens).toBe(lastRecord().candidatesTokens);
  });

  it("streams thinking tokens into the usage chunk", async () => {
    const chunks = await collect(ask("Think step by step", { reasoning_effort: "medium" }));
    const rec = lastRecord();
    expect(rec.thoughtsTokens).toBeGreaterThan(0);
    expect(chunks.at(-1)?.usage?.completion_tokens_details?.reasoning_tokens).toBe(rec.thoughtsTokens);
    expect(chunks.at(-1)?.usage?.completion_tokens).toBe(rec.thoughtsTokens + rec.candidatesTokens);
  });

  it("an abort mid-stream closes the HTTP stream: the emulator stops sending", async () => {
    emu.setChunkDelay(50);
    const controller = new AbortController();
    const closed = nextRecord((r) => r.stream && r.aborted);
    const request = ask("one two three four five six seven eight nine ten eleven twelve thirteen fourteen");
    const seen: string[] = [];
    const failure = await (async () => {
      for await (const chunk of llm.stream(request, { signal: controller.signal })) {
        const text = chunk.choices[0]?.delta.content;
        if (text) {
          seen.push(text);
          controller.abort();
        }
      }
    })().catch((err: unknown) => err);
    expect(failure).toBeInstanceOf(Error);
    const rec = await closed;
    expect(rec.aborted).toBe(true);
    expect(seen).toHaveLength(1);
    // Only what was sent before the abort: the full answer is many more tokens.
    expect(rec.candidatesTokens).toBeLessThan(10);
  });

  it("a stream cut mid-way fails as retryable", async () => {
    emu.setFault({ kind: "cut", afterChunks: 2 });
    const failure = await collect(
      ask("one two three four five six seven eight nine ten eleven twelve"),
    ).catch((err: unknown) => err);
    expect(failure).toBeInstanceOf(RetryableError);
  });
});

describe("gemini: provider errors", () => {
  it("a 429 is retryable and the next attempt succeeds", async () => {
    emu.setFault({ kind: "status", status: 429 });
    const failure = await llm.complete(ask("hello")).catch((err: unknown) => err);
    expect(failure).toBeInstanceOf(RetryableError);
    expect(lastRecord().status).toBe(429);
    const completion = await llm.complete(ask("hello"));
    expect(completion.choices[0]?.message.content).toBe("Echo: hello");
  });

  it.each([500, 503])("a %i is retryable, in a stream too", async (status) => {
    emu.setFault({ kind: "status", status, times: 2 });
    await expect(llm.complete(ask("hello"))).rejects.toBeInstanceOf(RetryableError);
    await expect(collect(ask("hello"))).rejects.toBeInstanceOf(RetryableError);
  });

  it("a 400 is permanent, with its status, Google's status as code and the message", async () => {
    emu.setFault({ kind: "status", status: 400, message: "Invalid value at 'contents[0].parts'" });
    const failure = (await llm.complete(ask("hello")).catch((err: unknown) => err)) as PermanentError;
    expect(failure).toBeInstanceOf(PermanentError);
    expect(failure.status).toBe(400);
    expect(failure.type).toBe("invalid_request_error");
    expect(failure.code).toBe("invalid_argument");
    expect(failure.message).toBe("Invalid value at 'contents[0].parts'");
  });

  it("an unknown model is a permanent 404", async () => {
    const failure = (await llm
      .complete(ask("hello", { model: "palm-2-nope" }))
      .catch((e: unknown) => e)) as PermanentError;
    expect(failure).toBeInstanceOf(PermanentError);
    expect([failure.status, failure.type, failure.code]).toEqual([404, "not_found_error", "not_found"]);
  });

  it("a wrong API key (Google's 400 API_KEY_INVALID) is meterline's 502 upstream_auth", async () => {
    const wrong = createGeminiLlm({ apiKey: "not-the-key", baseURL: emu.url, timeoutMs: 10_000 });
    const failure = (await wrong.complete(ask("hello")).catch((err: unknown) => err)) as PermanentError;
    expect(failure).toBeInstanceOf(PermanentError);
    expect([failure.status, failure.code]).toEqual([502, "upstream_auth"]);
  });

  it("a Gemini that does not answer within timeoutMs is retryable; a stream may outlast it once answering", async () => {
    const quick = createGeminiLlm({ apiKey: "gemini-test-key", baseURL: emu.url, timeoutMs: 300 });
    emu.setLatency(2_000);
    const closed = nextRecord((r) => r.aborted);
    await expect(quick.complete(ask("hello"))).rejects.toBeInstanceOf(RetryableError);
    expect((await closed).aborted).toBe(true);
    emu.setLatency(0);
    emu.setChunkDelay(100);
    const chunks: OpenAI.ChatCompletionChunk[] = [];
    const started = performance.now();
    for await (const c of quick.stream(ask("every customer and model in the report ".repeat(5))))
      chunks.push(c);
    expect(performance.now() - started).toBeGreaterThan(300);
    expect(chunks.at(-1)?.usage?.completion_tokens).toBe(lastRecord().candidatesTokens);
  });

  it("an unreachable Gemini is retryable", async () => {
    const gone = await startGeminiEmulator();
    await gone.close();
    const unreachable = createGeminiLlm({ apiKey: "k", baseURL: gone.url, timeoutMs: 10_000 });
    await expect(unreachable.complete(ask("hello"))).rejects.toBeInstanceOf(RetryableError);
  });
});
