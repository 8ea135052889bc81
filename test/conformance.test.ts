import { countTokens } from "gpt-tokenizer";
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import snapshot from "../src/billing/pricing/price-snapshot.json" with { type: "json" };
import { DEFAULT_PLANS } from "../src/billing/pricing/plans.js";
import type { AnthropicReportedUsage } from "../src/local/anthropic-emulator.js";
import type { GeminiReportedUsage } from "../src/local/gemini-emulator.js";
import type { OpenAIReportedUsage } from "../src/local/openai-emulator.js";
import { useStack, waitFor } from "./helpers/stack.js";

// The provider conformance matrix (issue #15): every provider × every kind of request, sent through
// the official `openai` SDK to meterline (web → queue → worker → the provider's official SDK → its
// emulator → ledger). Each usage row is checked against what the provider's emulator reported in
// the provider's OWN usage fields and against the price snapshot — both mapped and priced here,
// independently of src/ (no call to usageFromProvider, anthropicUsage, geminiUsage or
// providerCostMicros).
//
// Cases run one after another; within a case the three providers run at once. So each emulator
// serves one cell at a time, and a cell's provider calls are simply the records its emulator added
// while the cell ran — which also keeps injected faults (a queue per emulator) on their own cell.

const stack = useStack({ providers: true });

const PROVIDERS = ["openai", "anthropic", "gemini"] as const;
type Provider = (typeof PROVIDERS)[number];
type Models = Record<Provider, string>;
const MODELS: Models = { openai: "gpt-4o-mini", anthropic: "claude-haiku-4-5", gemini: "gemini-2.5-flash" };

type Row = Record<string, unknown>;
type Columns = {
  prompt_tokens: number;
  cached_tokens: number;
  cache_write_tokens: number;
  completion_tokens: number;
  reasoning_tokens: number;
};

/**
 * One emulator request as the matrix reads it: its status, the usage it reported in the provider's
 * own fields, the prompt tokens it counted and the output tokens it sent (so far, when aborted).
 */
type Call = { status: number; aborted: boolean; usage?: unknown; promptTokens: number; sentTokens: number };

function callsOf(provider: Provider): Call[] {
  if (provider === "openai")
    return stack.emulator.requests.map((r) => ({ ...r, sentTokens: r.completionTokens }));
  if (provider === "anthropic")
    return stack.anthropic.requests.map((r) => ({
      ...r,
      promptTokens: r.inputTokens + r.cacheCreationInputTokens + r.cacheReadInputTokens,
      sentTokens: r.outputTokens,
    }));
  return stack.gemini.requests.map((r) => ({ ...r, sentTokens: r.candidatesTokens + r.thoughtsTokens }));
}

/**
 * Each provider's usage semantics, written out again from the providers' documentation:
 * - OpenAI: prompt_tokens is all input, cached_tokens a SUBSET of it; no cache writes are billed;
 *   completion_tokens includes reasoning_tokens.
 * - Anthropic: input_tokens, cache_creation_input_tokens and cache_read_input_tokens are DISJOINT
 *   (all input is their sum); output_tokens includes thinking.
 * - Gemini: promptTokenCount INCLUDES cachedContentTokenCount; thoughtsTokenCount is reported APART
 *   from candidatesTokenCount and billed as output.
 */
function expectedColumns(provider: Provider, usage: unknown): Columns {
  if (provider === "openai") {
    const u = usage as OpenAIReportedUsage;
    return {
      prompt_tokens: u.prompt_tokens,
      cached_tokens: u.prompt_tokens_details.cached_tokens,
      cache_write_tokens: 0,
      completion_tokens: u.completion_tokens,
      reasoning_tokens: u.completion_tokens_details.reasoning_tokens,
    };
  }
  if (provider === "anthropic") {
    const u = usage as AnthropicReportedUsage;
    return {
      prompt_tokens: u.input_tokens + u.cache_creation_input_tokens + u.cache_read_input_tokens,
      cached_tokens: u.cache_read_input_tokens,
      cache_write_tokens: u.cache_creation_input_tokens,
      completion_tokens: u.output_tokens,
      reasoning_tokens: u.output_tokens_details?.thinking_tokens ?? 0,
    };
  }
  const u = usage as GeminiReportedUsage;
  return {
    prompt_tokens: u.promptTokenCount,
    cached_tokens: u.cachedContentTokenCount ?? 0,
    cache_write_tokens: 0,
    completion_tokens: u.candidatesTokenCount + (u.thoughtsTokenCount ?? 0),
    reasoning_tokens: u.thoughtsTokenCount ?? 0,
  };
}

type SnapshotPrice = {
  model: string;
  inputPerM: number;
  cachedInputPerM: number;
  cacheWritePerM?: number;
  outputPerM: number;
  reasoningPerM?: number;
};

/** The provider's cost of these tokens at the snapshot's rates (per 1M tokens, in micros). */
function expectedCostMicros(model: string, c: Columns): number {
  const price = (snapshot.prices as SnapshotPrice[]).find((p) => p.model === model);
  if (!price) throw new Error(`no snapshot price for ${model}`);
  const scaled =
    (c.prompt_tokens - c.cached_tokens - c.cache_write_tokens) * price.inputPerM +
    c.cached_tokens * price.cachedInputPerM +
    c.cache_write_tokens * (price.cacheWritePerM ?? price.inputPerM) +
    (c.completion_tokens - c.reasoning_tokens) * price.outputPerM +
    c.reasoning_tokens * (price.reasoningPerM ?? price.outputPerM);
  return Math.round(scaled / 1_000_000);
}

// Customers are on the default pay-as-you-go plan: no allowance, every token at its per-1K rate.
const USAGE_PLAN = DEFAULT_PLANS.find((p) => p.id === "usage")!;
const chargeOf = (tokens: number) => Math.round((tokens * USAGE_PLAN.overagePer1kMicros) / 1000);

const COLUMNS = [
  "prompt_tokens",
  "cached_tokens",
  "cache_write_tokens",
  "completion_tokens",
  "reasoning_tokens",
];
const columnsOf = (row: Row) => Object.fromEntries(COLUMNS.map((c) => [c, row[c]])) as Columns;

/** Asserts a row against the usage a provider reported for it, the snapshot's prices and the plan. */
function expectBilledAsReported(provider: Provider, model: string, row: Row, usage: unknown): Columns {
  expect(usage, "the provider reported usage").toBeDefined();
  const want = expectedColumns(provider, usage);
  expect(columnsOf(row)).toEqual(want);
  const billable = want.prompt_tokens + want.completion_tokens;
  expect(row).toMatchObject({
    model,
    price_model: model,
    source: "provider",
    billable_tokens: billable,
    provider_cost_micros: expectedCostMicros(model, want),
    charge_micros: chargeOf(billable),
  });
  return want;
}

/** The customer's answer carries the billed usage and its cost. */
function expectAnswerUsage(usage: OpenAI.CompletionUsage | undefined, row: Row): void {
  expect(usage).toMatchObject({
    prompt_tokens: row.prompt_tokens,
    completion_tokens: row.completion_tokens,
    cost_details: { charge_micros: row.charge_micros },
  });
}

/**
 * A cell of the matrix: its own customer (so its rows are exactly the customer's rows) and the
 * provider calls made since it began.
 */
async function cell(provider: Provider) {
  const customer = await stack.customer();
  const from = callsOf(provider).length;
  return {
    openai: customer.openai,
    calls: () => callsOf(provider).slice(from),
    rows: (): Promise<Row[]> =>
      stack.db("usage_events").where({ customer_id: customer.customerId }).orderBy("id"),
  };
}

const user = (content: string) => ({ role: "user" as const, content });
type Body = OpenAI.ChatCompletionCreateParamsNonStreaming;

/** A plain chat through meterline: its one provider call succeeded and its one row is billed as reported. */
async function plainCell(provider: Provider, model: string, body: Omit<Body, "model">) {
  const c = await cell(provider);
  const answer = await c.openai.chat.completions.create({ ...body, model });
  const [call, ...more] = c.calls();
  expect(more).toHaveLength(0);
  expect(call?.status).toBe(200);
  const rows = await c.rows();
  expect(rows).toHaveLength(1);
  const billed = expectBilledAsReported(provider, model, rows[0]!, call!.usage);
  expectAnswerUsage(answer.usage, rows[0]!);
  return { answer, billed };
}

// Forty distinct words: the emulators echo up to forty words, so answers run to a few dozen tokens.
const FORTY_WORDS = Array.from({ length: 40 }, (_, i) => `word${i}`).join(" ");
// Over 1,024 tokens, every provider's minimum cacheable prefix (Gemini Flash's implicit cache too).
const LONG_CONTEXT = Array.from({ length: 700 }, (_, i) => `fact${i} holds.`).join(" ");

/** A PNG of this size, header only: what each provider's image rule sizes (no pixel is read). */
function pngDataUrl(width: number, height: number): string {
  const header = Buffer.alloc(33);
  Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]).copy(header, 0);
  header.writeUInt32BE(13, 8);
  header.write("IHDR", 12, "ascii");
  header.writeUInt32BE(width, 16);
  header.writeUInt32BE(height, 20);
  header.writeUInt8(8, 24);
  header.writeUInt8(2, 25);
  return `data:image/png;base64,${header.toString("base64")}`;
}

const WEATHER_TOOL: OpenAI.ChatCompletionTool = {
  type: "function",
  function: {
    name: "get_weather",
    description: "The current weather in a city",
    parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] },
  },
};

describe("plain", () => {
  it.concurrent.each(PROVIDERS)("%s", async (provider) => {
    const { billed } = await plainCell(provider, MODELS[provider], {
      messages: [user("Say hello to the conformance matrix.")],
    });
    expect(billed).toMatchObject({ cached_tokens: 0, cache_write_tokens: 0, reasoning_tokens: 0 });
  });
});

// Anthropic caches only what the client marks (cache_control, as LiteLLM and OpenRouter accept it);
// OpenAI and Gemini cache a repeated prefix by themselves.
const system = (provider: Provider) =>
  provider === "anthropic"
    ? {
        role: "system" as const,
        content: [{ type: "text", text: LONG_CONTEXT, cache_control: { type: "ephemeral" } }],
      }
    : { role: "system" as const, content: LONG_CONTEXT };

describe("cached prompt: written, then read", () => {
  const models: Models = {
    openai: "gpt-4.1-mini",
    anthropic: "claude-sonnet-4-5",
    gemini: "gemini-2.5-flash",
  };
  it.concurrent.each(PROVIDERS)("%s", async (provider) => {
    const model = models[provider];
    const c = await cell(provider);
    const body = {
      model,
      messages: [system(provider), user(`Which fact comes first? (${provider})`)],
    } as Body;
    await c.openai.chat.completions.create(body);
    await c.openai.chat.completions.create(body);

    const calls = c.calls();
    expect(calls.map((call) => call.status)).toEqual([200, 200]);
    const rows = await c.rows();
    expect(rows).toHaveLength(2);
    const [write, read] = rows.map((row, i) => expectBilledAsReported(provider, model, row, calls[i]!.usage));
    // The case exercises what it names: a first request that wrote the cache (where the provider
    // bills writes) and a repeat that read it.
    expect(write!.cached_tokens).toBe(0);
    expect(write!.cache_write_tokens > 0).toBe(provider === "anthropic");
    expect(read!.cached_tokens).toBeGreaterThan(1000);
    expect(read!.cache_write_tokens).toBe(0);
    expect(Number(rows[1]!.provider_cost_micros)).toBeLessThan(Number(rows[0]!.provider_cost_micros));
  });
});

describe("reasoning / thinking", () => {
  const models: Models = { openai: "o4-mini", anthropic: "claude-sonnet-4-5", gemini: "gemini-2.5-pro" };
  it.concurrent.each(PROVIDERS)("%s", async (provider) => {
    const { billed } = await plainCell(provider, models[provider], {
      messages: [user("Think about this, then answer: what is two plus two?")],
      reasoning_effort: "low",
    });
    expect(billed.reasoning_tokens).toBeGreaterThan(0);
    expect(billed.completion_tokens).toBeGreaterThan(billed.reasoning_tokens);
  });
});

describe("tool call", () => {
  const models: Models = { openai: "gpt-4o", anthropic: "claude-haiku-4-5", gemini: "gemini-2.5-flash" };
  it.concurrent.each(PROVIDERS)("%s", async (provider) => {
    const { answer, billed } = await plainCell(provider, models[provider], {
      messages: [user("What is the weather in Paris? Use the tool.")],
      tools: [WEATHER_TOOL],
      tool_choice: "required",
    });
    // The tool definitions are billed as prompt (each provider counts them its own way).
    expect(billed.prompt_tokens).toBeGreaterThan(40);
    expect(answer.choices[0]?.finish_reason).toBe("tool_calls");
    expect(answer.choices[0]?.message.tool_calls?.[0]).toMatchObject({ function: { name: "get_weather" } });
  });
});

describe("image", () => {
  it.concurrent.each(PROVIDERS)("%s", async (provider) => {
    const { billed } = await plainCell(provider, MODELS[provider], {
      messages: [
        {
          role: "user",
          content: [
            { type: "text", text: "What is in this picture?" },
            { type: "image_url", image_url: { url: pngDataUrl(1000, 750) } },
          ],
        },
      ],
    });
    // Every provider bills a 1000×750 image at hundreds of tokens or more (each by its own rule).
    expect(billed.prompt_tokens).toBeGreaterThan(250);
  });
});

describe("stream", () => {
  const models: Models = { openai: "gpt-4.1", anthropic: "claude-opus-4-1", gemini: "gemini-2.5-pro" };
  it.concurrent.each(PROVIDERS)("%s", async (provider) => {
    const model = models[provider];
    const c = await cell(provider);
    const stream = await c.openai.chat.completions.create({
      model,
      messages: [user(FORTY_WORDS)],
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = "";
    let usage: OpenAI.CompletionUsage | undefined;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta?.content ?? "";
      usage = chunk.usage ?? usage;
    }

    expect(text).toBe(`Echo: ${FORTY_WORDS}`);
    const [call, ...more] = c.calls();
    expect(more).toHaveLength(0);
    expect(call).toMatchObject({ status: 200, aborted: false });
    // The row is written before [DONE]: it is there once the stream ended.
    const rows = await c.rows();
    expect(rows).toHaveLength(1);
    expectBilledAsReported(provider, model, rows[0]!, call!.usage);
    expectAnswerUsage(usage, rows[0]!);
  });
});

describe("stream cancelled mid-way", () => {
  // Slow chunks, so the client leaves well inside the answer and the worker stops the provider
  // long before its end.
  const CHUNK_DELAY_MS = 200;
  beforeAll(() => {
    for (const emulator of [stack.emulator, stack.anthropic, stack.gemini])
      emulator.setChunkDelay(CHUNK_DELAY_MS);
  });
  afterAll(() => {
    for (const emulator of [stack.emulator, stack.anthropic, stack.gemini]) emulator.setChunkDelay(0);
  });

  it.concurrent.each(PROVIDERS)("%s", async (provider) => {
    const model = MODELS[provider];
    const c = await cell(provider);
    // A cacheable prompt: Claude writes it to its cache, so the cut request has cache writes to bill.
    const stream = await c.openai.chat.completions.create({
      model,
      messages: [system(provider), user(FORTY_WORDS)],
      stream: true,
      stream_options: { include_usage: true },
    } as unknown as OpenAI.ChatCompletionCreateParamsStreaming);
    let shown = "";
    // Leaving the loop at the first words closes the HTTP response: the SDK aborts its request.
    for await (const chunk of stream) {
      shown += chunk.choices[0]?.delta?.content ?? "";
      if (shown) break;
    }

    const call = await waitFor(() => c.calls().find((r) => r.aborted), { what: "the provider call aborted" });
    const row = await waitFor(async () => (await c.rows())[0], { what: "the usage row" });
    // Billed for what was served (README "Streaming"): the completion the worker received before
    // the cancel, counted from its text — at least what the client was shown, at most what the
    // provider sent (the same, unless a chunk was in flight at the cancel). The row says so.
    expect(row).toMatchObject({ source: "estimated", reasoning_tokens: 0 });
    expect(Number(row.completion_tokens)).toBeGreaterThanOrEqual(countTokens(shown));
    expect(Number(row.completion_tokens)).toBeLessThanOrEqual(call.sentTokens);
    expect(call.sentTokens).toBeLessThan(countTokens(`Echo: ${FORTY_WORDS}`)); // it was cut mid-way
    expect(call.promptTokens).toBeGreaterThan(1000);
    if (provider === "openai") {
      // OpenAI reports usage only at the end: the prompt is meterline's estimate, which never counts
      // less than the provider did.
      expect(Number(row.prompt_tokens)).toBeGreaterThanOrEqual(call.promptTokens);
    } else {
      // Claude (message_start) and Gemini (every chunk) report the prompt side before the end: it is
      // billed exactly as reported, cache writes included.
      const reported = expectedColumns(provider, call.usage);
      expect(columnsOf(row)).toMatchObject({
        prompt_tokens: reported.prompt_tokens,
        cached_tokens: reported.cached_tokens,
        cache_write_tokens: reported.cache_write_tokens,
      });
      expect(reported.prompt_tokens).toBe(call.promptTokens);
      if (provider === "anthropic") expect(reported.cache_write_tokens).toBeGreaterThan(1000);
    }
    expect(Number(row.charge_micros)).toBe(chargeOf(Number(row.billable_tokens)));
    expect(c.calls()).toHaveLength(1);
    expect(await c.rows()).toHaveLength(1);
  });
});

describe("provider 429, then success", () => {
  it.concurrent.each(PROVIDERS)("%s", async (provider) => {
    const fault = { kind: "status" as const, status: 429, times: 1 };
    if (provider === "openai") stack.emulator.injectFault(fault);
    else if (provider === "anthropic") stack.anthropic.injectFault(fault);
    else stack.gemini.setFault(fault);
    const model = MODELS[provider];
    const c = await cell(provider);
    const answer = await c.openai.chat.completions.create({ model, messages: [user("Rate limited first.")] });

    // The worker retried the job: the provider was called twice, and paid (and billed) once.
    const calls = c.calls();
    expect(calls.map((call) => call.status)).toEqual([429, 200]);
    const rows = await c.rows();
    expect(rows).toHaveLength(1);
    expectBilledAsReported(provider, model, rows[0]!, calls[1]!.usage);
    expectAnswerUsage(answer.usage, rows[0]!);
  });
});

describe("provider 400", () => {
  it.concurrent.each(PROVIDERS)("%s", async (provider) => {
    const message = `The ${provider} model refuses this prompt.`;
    const fault = { kind: "status" as const, status: 400, times: 1, message };
    if (provider === "openai") stack.emulator.injectFault(fault);
    else if (provider === "anthropic") stack.anthropic.injectFault(fault);
    else stack.gemini.setFault(fault);
    const c = await cell(provider);
    const err = await c.openai.chat.completions
      .create({ model: MODELS[provider], messages: [user("Refuse me.")] })
      .catch((e: unknown) => e);

    // The provider's status and its message (it names nothing of the account), OpenAI-style.
    expect(err).toBeInstanceOf(OpenAI.BadRequestError);
    const error = (err as InstanceType<typeof OpenAI.BadRequestError>).error as Record<string, unknown>;
    expect(error).toMatchObject({ message, type: "invalid_request_error" });
    expect(error).toHaveProperty("code");
    // Not retried (a 400 is the request's fault), and nothing billed.
    expect(c.calls().map((call) => call.status)).toEqual([400]);
    expect(await c.rows()).toHaveLength(0);
  });
});
