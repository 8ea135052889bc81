import type { Request } from "express";
import OpenAI from "openai";
import { describe, expect, it } from "vitest";
import { HttpError, PermanentError } from "../src/errors.js";
import { parseChatCall } from "../src/api/chat/request.js";
import { MODEL_ALIASES, priceFor } from "../src/billing/pricing/prices.js";
import type { ChatCompletion, ChatRequest, Llm } from "../src/llm/client.js";
import { createRoutedLlm, MODEL_PROVIDERS, providerOf, unconfiguredProvider } from "../src/llm/providers.js";
import { ask, useStack } from "./helpers/stack.js";

const stack = useStack({ worker: false });

/** An Llm that answers with its own name, and remembers the models it was asked for. */
function fakeLlm(name: string): Llm & { models: string[] } {
  const models: string[] = [];
  const completion = (model: string) => ({ id: name, model, object: "chat.completion" }) as ChatCompletion;
  return {
    models,
    async complete(request) {
      models.push(request.model);
      return completion(request.model);
    },
    async *stream(request) {
      models.push(request.model);
      yield { id: name, model: request.model } as OpenAI.ChatCompletionChunk;
    },
  };
}

const request = (model: string): ChatRequest => ({ model, messages: [{ role: "user", content: "hi" }] });

describe("the provider table", () => {
  it("names each model and dated alias explicitly, and prices every one of them", () => {
    expect(providerOf("claude-sonnet-4-5")).toBe("anthropic");
    expect(providerOf("claude-sonnet-4-5-20250929")).toBe("anthropic");
    expect(providerOf("claude-haiku-4-5-20251001")).toBe("anthropic");
    expect(providerOf("claude-opus-4-1-20250805")).toBe("anthropic");
    expect(providerOf("gemini-2.5-pro")).toBe("gemini");
    expect(providerOf("gemini-2.5-flash-preview-09-2025")).toBe("gemini");
    expect(providerOf("gpt-4o-2024-08-06")).toBe("openai");
    for (const model of [...Object.keys(MODEL_PROVIDERS), ...Object.keys(MODEL_ALIASES)])
      expect(priceFor(model), model).toBeDefined();
  });

  it("matches names, not prefixes: an unlisted name goes to the OpenAI-compatible server", () => {
    // Would be Anthropic or Gemini by prefix; they are not in the table, so not theirs.
    for (const model of ["claude-sonnet-4-5-preview", "claude-3-opus", "gemini-2.5-pro-exp", "my-llama"])
      expect(providerOf(model), model).toBe("openai");
    expect(priceFor("claude-sonnet-4-5-preview")).toBeUndefined();
  });
});

describe("createRoutedLlm", () => {
  it("sends each request to its model's provider, plain and streamed", async () => {
    const [openai, anthropic, gemini] = [fakeLlm("openai"), fakeLlm("anthropic"), fakeLlm("gemini")];
    const llm = createRoutedLlm({ openai, anthropic, gemini });

    expect((await llm.complete(request("claude-haiku-4-5"))).id).toBe("anthropic");
    expect((await llm.complete(request("gemini-2.5-flash"))).id).toBe("gemini");
    expect((await llm.complete(request("gpt-4o-mini"))).id).toBe("openai");
    expect((await llm.complete(request("local-model"))).id).toBe("openai");
    const chunks = [];
    for await (const chunk of llm.stream(request("claude-opus-4-1-20250805"))) chunks.push(chunk.id);
    expect(chunks).toEqual(["anthropic"]);
    expect(anthropic.models).toEqual(["claude-haiku-4-5", "claude-opus-4-1-20250805"]);
    expect(openai.models).toEqual(["gpt-4o-mini", "local-model"]);
  });

  it("fails a model whose provider has no client for good, with a 400, plain and streamed", async () => {
    const llm = createRoutedLlm({ openai: fakeLlm("openai") });
    const plain = await llm.complete(request("claude-sonnet-4-5")).catch((e: unknown) => e);
    expect(plain).toBeInstanceOf(PermanentError);
    expect(plain).toMatchObject({ status: 400, code: "provider_not_configured" });
    const streamed = await (async () => {
      for await (const _ of llm.stream(request("gemini-2.5-pro"))) return "served";
    })().catch((e: unknown) => e);
    expect(streamed).toMatchObject({ status: 400, code: "provider_not_configured" });
  });
});

describe("a model whose provider is not configured", () => {
  const config = { defaultModelPrice: undefined, idempotencyTtlS: 1, jobRetentionS: 1, chatJobMaxBytes: 1e6 };
  const parse = (settings: object, model: string) => {
    const req = { body: request(model), header: () => undefined } as unknown as Request;
    return parseChatCall(req, { ...config, ...settings });
  };

  it("is refused by the API with 400 provider_not_configured naming model; served once configured", () => {
    const err = (() => {
      try {
        parse({}, "claude-sonnet-4-5");
      } catch (e) {
        return e as HttpError;
      }
    })();
    expect(err).toBeInstanceOf(HttpError);
    expect(err!.toBody().error).toMatchObject({ code: "provider_not_configured", param: "model" });
    expect(unconfiguredProvider("gemini-2.5-pro", { anthropic: {} })).toBe("gemini");
    expect(parse({ anthropic: { apiKey: "k" } }, "claude-sonnet-4-5").request.model).toBe(
      "claude-sonnet-4-5",
    );
    expect(parse({}, "gpt-4o-mini").request.model).toBe("gpt-4o-mini");
  });

  it("answers 400 through the official SDK, before anything is queued or billed", async () => {
    const { customerId, openai } = await stack.customer();
    const err = await openai.chat.completions
      .create({ ...ask("hi"), model: "gemini-2.5-flash" })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.BadRequestError);
    expect(err).toMatchObject({ code: "provider_not_configured", param: "model" });
    expect((err as Error).message).toMatch(/gemini-2\.5-flash.*gemini.*not configured/);
    expect(await stack.db("usage_events").where({ customer_id: customerId })).toHaveLength(0);
    expect(await stack.web.queues.chat.getJobCounts()).toMatchObject({ waiting: 0, active: 0 });
  });
});
