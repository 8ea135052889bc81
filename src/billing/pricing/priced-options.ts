import type { ModelPrice, ServiceTier } from "./prices.js";

/** A request option that changes what the provider charges, which meterline cannot price. */
export interface UnpricedOption {
  param: string;
  message: string;
}

/** The parts of a chat request that change the provider's charge beyond its tokens. */
export type PricedOptions = {
  model: string;
  service_tier?: unknown;
  web_search_options?: unknown;
  modalities?: unknown;
  audio?: unknown;
  tools?: unknown;
};

// Built-in tools the provider bills per call or per generated image, on top of tokens.
const BILLED_TOOLS = new Set(["web_search", "web_search_preview", "image_generation"]);

/**
 * The first option of a chat request that the price cannot bill, or undefined. A service tier is
 * billed at its own rates when the price lists them (ModelPrice.serviceTiers); web search, audio
 * output and image generation are charged per search, audio token or image, which the ledger does
 * not record, so they are always refused — billing them at the plain token price would charge less
 * than the provider does.
 */
export function unpricedOption(request: PricedOptions, price: ModelPrice): UnpricedOption | undefined {
  const refuse = (param: string, what: string) => ({
    param,
    message: `${what} changes what the provider charges for '${request.model}', and meterline has no price for it; remove '${param}'.`,
  });
  const tier = request.service_tier;
  if (typeof tier === "string" && !["auto", "default"].includes(tier)) {
    const tiers: Readonly<Record<string, unknown>> = price.serviceTiers ?? {};
    if (!Object.hasOwn(tiers, tier) || !tiers[tier])
      return refuse("service_tier", `The service tier '${tier}'`);
  }
  if (request.web_search_options != null) return refuse("web_search_options", "Web search");
  const modalities = Array.isArray(request.modalities) ? request.modalities : [];
  if (modalities.includes("audio")) return refuse("modalities", "Audio output");
  if (request.audio != null) return refuse("audio", "Audio output");
  if (modalities.includes("image")) return refuse("modalities", "Image generation");
  const tools = Array.isArray(request.tools) ? (request.tools as Array<{ type?: unknown }>) : [];
  const billed = tools.find((t) => typeof t?.type === "string" && BILLED_TOOLS.has(t.type));
  if (billed) return refuse("tools", `The built-in tool '${String(billed.type)}'`);
  return undefined;
}

/** The service tier a chat ran in, as priced: the provider's answer first, else what was asked. */
export function pricedServiceTier(answered: unknown, requested: unknown): ServiceTier | undefined {
  const tier = typeof answered === "string" ? answered : requested;
  return tier === "priority" || tier === "flex" ? tier : undefined;
}
