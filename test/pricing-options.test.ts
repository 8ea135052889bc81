import type { Request } from "express";
import OpenAI from "openai";
import { afterEach, describe, expect, it } from "vitest";
import { HttpError } from "../src/errors.js";
import { parseChatCall } from "../src/api/chat/request.js";
import { pricedServiceTier } from "../src/billing/pricing/priced-options.js";
import {
  installPriceOverrides,
  priceFor,
  providerCostMicros,
  SNAPSHOT_PRICES,
  type TokenUsage,
} from "../src/billing/pricing/prices.js";
import { ask, useStack } from "./helpers/stack.js";

const stack = useStack({ worker: false });
const config = { defaultModelPrice: undefined, idempotencyTtlS: 1, jobRetentionS: 1, chatJobMaxBytes: 1e6 };
const chat = (extra: Record<string, unknown>) => ({ ...ask("hi"), ...extra });

/** The API's refusal of a body, as its OpenAI-style error; undefined when accepted. */
function refusal(body: object) {
  const req = { body, header: () => undefined } as unknown as Request;
  try {
    parseChatCall(req, config);
  } catch (err) {
    expect(err).toBeInstanceOf(HttpError);
    return (err as HttpError).toBody().error;
  }
  return undefined;
}

afterEach(() => installPriceOverrides([]));

describe("request options that change the provider's charge", () => {
  it.each([
    ["service_tier priority", { service_tier: "priority" }, "service_tier"],
    ["service_tier flex", { service_tier: "flex" }, "service_tier"],
    ["service_tier scale", { service_tier: "scale" }, "service_tier"],
    ["an unknown service_tier", { service_tier: "constructor" }, "service_tier"],
    ["web search", { model: "gpt-4o", web_search_options: {} }, "web_search_options"],
    ["audio output", { modalities: ["text", "audio"] }, "modalities"],
    ["an audio voice", { audio: { voice: "alloy", format: "mp3" } }, "audio"],
    ["image generation", { model: "gemini-2.5-flash", modalities: ["text", "image"] }, "modalities"],
    ["a built-in web search tool", { tools: [{ type: "web_search" }] }, "tools"],
  ])("refuses %s without a price with 400 unsupported_pricing_option naming it", (_what, extra, param) => {
    const settings = { anthropic: {}, gemini: {} };
    const req = { body: chat(extra), header: () => undefined } as unknown as Request;
    const err = (() => {
      try {
        parseChatCall(req, { ...config, ...settings });
      } catch (e) {
        return (e as HttpError).toBody().error;
      }
    })();
    expect(err).toMatchObject({ type: "invalid_request_error", code: "unsupported_pricing_option", param });
    expect(err!.message).toMatch(/no price for it/);
  });

  it("accepts what costs only tokens: the default tiers, no modalities but text, function tools", () => {
    for (const extra of [
      { service_tier: "auto" },
      { service_tier: "default" },
      { modalities: ["text"] },
      { web_search_options: null },
      { tools: [{ type: "function", function: { name: "f", parameters: {} } }] },
    ])
      expect(refusal(chat(extra)), JSON.stringify(extra)).toBeUndefined();
  });

  it("accepts and prices a service tier once the price table has its rates", () => {
    const standard = priceFor("gpt-4o-mini")!;
    const priority = { inputPerM: 250_000, cachedInputPerM: 125_000, outputPerM: 1_000_000 };
    installPriceOverrides([{ ...standard, serviceTiers: { priority } }]);
    expect(refusal(chat({ service_tier: "priority" }))).toBeUndefined();
    expect(refusal(chat({ service_tier: "flex" }))).toMatchObject({ param: "service_tier" });

    const usage: TokenUsage = {
      promptTokens: 1_000_000,
      cachedTokens: 0,
      cacheWriteTokens: 0,
      completionTokens: 0,
      reasoningTokens: 0,
    };
    const price = priceFor("gpt-4o-mini")!;
    expect(providerCostMicros(usage, price, "priority")).toBe(250_000);
    expect(providerCostMicros(usage, price)).toBe(150_000);
    // The provider's answer says which tier ran: a priority request served at default costs default.
    expect(pricedServiceTier("default", "priority")).toBeUndefined();
    expect(pricedServiceTier(undefined, "priority")).toBe("priority");
    expect(SNAPSHOT_PRICES.some((p) => p.serviceTiers)).toBe(false);
  });

  it("answers 400 through the official SDK, before anything is queued or billed", async () => {
    const { customerId, openai } = await stack.customer();
    const err = await openai.chat.completions
      .create({ ...ask("hi"), service_tier: "priority" })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.BadRequestError);
    expect(err).toMatchObject({ status: 400, code: "unsupported_pricing_option", param: "service_tier" });
    expect(await stack.db("usage_events").where({ customer_id: customerId })).toHaveLength(0);
  });
});
