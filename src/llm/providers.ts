import { PermanentError } from "../errors.js";
import { MODEL_ALIASES } from "../billing/pricing/prices.js";
import type { ChatRequest, Llm } from "./client.js";

/** Who serves a model: the OpenAI SDK (OpenAI or any OpenAI-compatible server), Anthropic or Gemini. */
export type Provider = "openai" | "anthropic" | "gemini";

/**
 * The models meterline knows by name, and who serves each. Names are explicit, never prefixes: a
 * new model is served (and priced) only once it is listed here. Dated names reach their model
 * through MODEL_ALIASES (src/billing/pricing/prices.ts), the one alias table, so a name is served
 * by the provider of the model it is billed as. A name not listed — priced by DEFAULT_MODEL_PRICE
 * or a price override — goes to the OpenAI-compatible server, as it always has.
 */
export const MODEL_PROVIDERS: Readonly<Record<string, Provider>> = {
  "gpt-4o-mini": "openai",
  "gpt-4o": "openai",
  "gpt-4.1-mini": "openai",
  "gpt-4.1": "openai",
  "o4-mini": "openai",
  "claude-sonnet-4-5": "anthropic",
  "claude-haiku-4-5": "anthropic",
  "claude-opus-4-1": "anthropic",
  "gemini-2.5-pro": "gemini",
  "gemini-2.5-flash": "gemini",
};

/** The provider that serves a model name or alias; "openai" for any name the table does not list. */
export function providerOf(model: string): Provider {
  const name = Object.hasOwn(MODEL_ALIASES, model) ? MODEL_ALIASES[model]! : model;
  return Object.hasOwn(MODEL_PROVIDERS, name) ? MODEL_PROVIDERS[name]! : "openai";
}

/**
 * Which providers a process has credentials for: the OpenAI-compatible server always (it has an
 * emulator and a default), Anthropic and Gemini when their settings are present. Typed loosely so
 * it reads any config that has (or lacks) `anthropic` and `gemini` settings.
 */
export type ProviderSettings = { anthropic?: unknown; gemini?: unknown };

/** The provider a model needs when this process cannot reach it, else undefined. */
export function unconfiguredProvider(model: string, settings: ProviderSettings): Provider | undefined {
  const provider = providerOf(model);
  if (provider === "openai") return undefined;
  return settings[provider] ? undefined : provider;
}

/** The message of the error refusing a model whose provider is not configured, at the API or the worker. */
export const unconfiguredMessage = (model: string, provider: Provider) =>
  `The model '${model}' is served by ${provider}, which is not configured on this server.`;

/**
 * One `Llm` over several: each request goes to the provider of its model (providerOf). A model
 * whose provider has no client fails for good with a 400 — the API refuses it before it is queued
 * (src/api/chat/request.ts); this is the backstop for a worker configured differently from the web.
 */
export function createRoutedLlm(byProvider: { openai: Llm; anthropic?: Llm; gemini?: Llm }): Llm {
  const pick = (request: ChatRequest): Llm => {
    const provider = providerOf(request.model);
    const llm = byProvider[provider];
    if (!llm)
      throw new PermanentError(
        unconfiguredMessage(request.model, provider),
        400,
        "invalid_request_error",
        "provider_not_configured",
      );
    return llm;
  };
  return {
    complete: (request, options) => Promise.resolve().then(() => pick(request).complete(request, options)),
    stream: (request, options) => ({
      [Symbol.asyncIterator]: () => pick(request).stream(request, options)[Symbol.asyncIterator](),
    }),
  };
}

/**
 * An Llm whose client is being made by `load` (an SDK imported on demand), starting now: calls made
 * before it is ready wait for it, and a failed load fails each call with its error.
 */
export function loadingLlm(load: () => Promise<Llm>): Llm {
  const ready = load();
  // Reported by the calls that need it, not as an unhandled rejection at boot.
  ready.catch(() => {});
  return {
    complete: async (request, options) => (await ready).complete(request, options),
    async *stream(request, options) {
      yield* (await ready).stream(request, options);
    },
  };
}
