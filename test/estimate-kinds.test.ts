import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { estimatePromptTokens, type PromptRequest } from "../src/llm/usage.js";
import { startOpenAIEmulator, type OpenAIEmulator } from "../src/local/openai-emulator.js";

// The emulator stands in for OpenAI's prompt count. An estimate must never be below it (quota
// reservations and estimated rows would under-bill) and stays within these tolerances above it.
const EXACT = { ratio: 1, slack: 0 }; // media and tool calls are counted by the same published rules
const RENDERED = { ratio: 2.5, slack: 16 }; // definitions as JSON vs OpenAI's shorter rendering

let emulator: OpenAIEmulator;
beforeAll(async () => {
  emulator = await startOpenAIEmulator();
});
afterAll(async () => {
  await emulator.close();
});

async function providerPromptTokens(request: PromptRequest): Promise<number> {
  const res = await fetch(`${emulator.url}/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ model: "gpt-4o", ...request, max_tokens: 1 }),
  });
  expect(res.status).toBe(200);
  const body = (await res.json()) as { usage: { prompt_tokens: number } };
  return body.usage.prompt_tokens;
}

async function expectCloseAbove(request: PromptRequest, tolerance: { ratio: number; slack: number }) {
  const provider = await providerPromptTokens(request);
  const estimate = await estimatePromptTokens(request);
  expect(estimate).toBeGreaterThanOrEqual(provider);
  expect(estimate).toBeLessThanOrEqual(provider * tolerance.ratio + tolerance.slack);
  return { provider, estimate };
}

const dataUrl = (mime: string, bytes: Buffer) => `data:${mime};base64,${bytes.toString("base64")}`;
function png(width: number, height: number): string {
  const header = Buffer.alloc(33);
  Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]).copy(header);
  header.writeUInt32BE(13, 8);
  header.write("IHDR", 12, "ascii");
  header.writeUInt32BE(width, 16);
  header.writeUInt32BE(height, 20);
  return dataUrl("image/png", Buffer.concat([header, Buffer.alloc(64)]));
}
function jpeg(width: number, height: number): string {
  const app0 = Buffer.from([0xff, 0xe0, 0x00, 0x10, ...Buffer.from("JFIF\0"), 1, 1, 0, 0, 1, 0, 1, 0, 0]);
  const sof0 = Buffer.from([
    0xff,
    0xc0,
    0x00,
    0x11,
    8,
    height >> 8,
    height & 255,
    width >> 8,
    width & 255,
    3,
  ]);
  return dataUrl("image/jpeg", Buffer.concat([Buffer.from([0xff, 0xd8]), app0, sof0, Buffer.alloc(64)]));
}
function wav(seconds: number, bytesPerSecond = 32_000): string {
  const data = seconds * bytesPerSecond;
  const header = Buffer.alloc(44);
  header.write("RIFF", 0, "ascii");
  header.writeUInt32LE(36 + data, 4);
  header.write("WAVEfmt ", 8, "ascii");
  header.writeUInt32LE(16, 16);
  header.writeUInt16LE(1, 20); // PCM
  header.writeUInt16LE(1, 22); // mono
  header.writeUInt32LE(bytesPerSecond / 2, 24); // 16 kHz
  header.writeUInt32LE(bytesPerSecond, 28);
  header.writeUInt16LE(2, 32);
  header.writeUInt16LE(16, 34);
  header.write("data", 36, "ascii");
  header.writeUInt32LE(data, 40);
  return Buffer.concat([header, Buffer.alloc(data)]).toString("base64");
}

const image = (url: string, detail?: string) => ({ type: "image_url", image_url: { url, detail } });
const ask = (...parts: object[]) => [
  { role: "user", content: [{ type: "text", text: "What is in this picture?" }, ...parts] },
];

describe("estimates count what the provider bills", () => {
  it("images: the tile rule from the size in a data URL's header", async () => {
    // 1024×1024 → shortest side 768 → 2×2 tiles → 85 + 4 × 170 = 765 tokens on gpt-4o.
    const { provider } = await expectCloseAbove({ messages: ask(image(png(1024, 1024))) }, EXACT);
    expect(provider).toBeGreaterThan(765);
    await expectCloseAbove({ messages: ask(image(jpeg(4000, 1000), "high")) }, EXACT);
    await expectCloseAbove({ messages: ask(image(png(4096, 4096), "low")) }, EXACT);
  });

  it("images: gpt-4o-mini's multiplied image rates", async () => {
    const request = { model: "gpt-4o-mini", messages: ask(image(png(512, 512))) };
    const { provider } = await expectCloseAbove(request, EXACT);
    expect(provider).toBeGreaterThan(2833 + 5667);
  });

  it("images: a remote URL counts as the largest image auto detail yields", async () => {
    const { estimate } = await expectCloseAbove(
      { messages: ask(image("https://example.com/cat.jpg")) },
      EXACT,
    );
    expect(estimate).toBeGreaterThan(85 + 8 * 170);
  });

  it("input audio: 10 tokens a second of a WAV", async () => {
    const audio = { type: "input_audio", input_audio: { data: wav(5), format: "wav" } };
    const { provider } = await expectCloseAbove({ messages: ask(audio) }, EXACT);
    expect(provider).toBeGreaterThan(50);
  });

  const weather = {
    name: "get_weather",
    description: "Current weather for a city, in the unit the user prefers.",
    parameters: {
      type: "object",
      properties: {
        city: { type: "string", description: "City name, e.g. Paris" },
        unit: { type: "string", enum: ["celsius", "fahrenheit"] },
        days: { type: "integer", description: "Forecast days" },
      },
      required: ["city"],
    },
  };
  const question = [
    { role: "system", content: "You are a weather bot." },
    { role: "user", content: "Weather in Paris?" },
  ];

  it("tool definitions (tools) and legacy functions", async () => {
    const plain = await estimatePromptTokens({ messages: question });
    const { estimate } = await expectCloseAbove(
      { messages: question, tools: [{ type: "function", function: weather }] },
      RENDERED,
    );
    expect(estimate - plain).toBeGreaterThan(40);
    await expectCloseAbove({ messages: question, functions: [weather] }, RENDERED);
  });

  it("tool calls in assistant messages and tool results", async () => {
    const call = {
      id: "call_abc123",
      type: "function",
      function: {
        name: "get_weather",
        arguments: JSON.stringify({ city: "Paris", unit: "celsius", days: 3 }),
      },
    };
    const messages = [
      ...question,
      { role: "assistant", content: null, tool_calls: [call] },
      { role: "tool", tool_call_id: "call_abc123", content: '{"temperature":21,"sky":"clear"}' },
    ];
    const { provider } = await expectCloseAbove({ messages }, { ratio: 1, slack: 8 });
    expect(provider).toBeGreaterThan(await providerPromptTokens({ messages: question }));
  });

  it("structured-output schemas (response_format)", async () => {
    const response_format = {
      type: "json_schema",
      json_schema: {
        name: "forecast",
        strict: true,
        schema: {
          type: "object",
          properties: { city: { type: "string" }, celsius: { type: "number" }, sky: { type: "string" } },
          required: ["city", "celsius", "sky"],
          additionalProperties: false,
        },
      },
    };
    const { estimate } = await expectCloseAbove({ messages: question, response_format }, RENDERED);
    expect(estimate - (await estimatePromptTokens({ messages: question }))).toBeGreaterThan(30);
  });
});
