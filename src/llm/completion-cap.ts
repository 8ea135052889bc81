import type { ChatRequest } from "./client.js";

/**
 * The request as sent to the provider when its completion may not exceed `cap` tokens (what a hard
 * limit reserved). A client's own smaller cap stays; a request that used the legacy `max_tokens`
 * keeps using it (some models and compatible servers know only that one), any other gets
 * `max_completion_tokens`. Without a cap the request goes out unchanged.
 */
export function capCompletion(request: ChatRequest, cap: number | undefined): ChatRequest {
  if (cap === undefined) return request;
  if (request.max_completion_tokens == null && request.max_tokens != null) {
    return { ...request, max_tokens: Math.min(request.max_tokens, cap) };
  }
  return { ...request, max_completion_tokens: Math.min(request.max_completion_tokens ?? cap, cap) };
}
