import { createHash, randomUUID } from "node:crypto";

/**
 * The request id of a chat: the BullMQ job id and the usage row's unique key. Fresh for every new
 * request, keyed or not: a repeated Idempotency-Key finds its request id in Postgres
 * (chat_requests), and a key reused after its claim expired gets a new id, so it is billed anew.
 * BullMQ job ids may not contain ":" nor be all digits; the id starts with "chat_".
 */
export function newChatRequestId(): string {
  return `chat_${randomUUID().replaceAll("-", "")}`;
}

/** What a chat's Idempotency-Key is stored as: keys are the customer's own, unique per customer. */
export function idempotencyKeyHash(customerId: string, idempotencyKey: string): string {
  return sha256(`${customerId}\u0000${idempotencyKey}`);
}

/**
 * The usage row key of an ingested event: event ids are the customer's own, so they are unique per
 * customer only. The same (customer, event id) always maps to the same row; starts with "usage_".
 */
export function usageEventRequestId(customerId: string, eventId: string): string {
  return `usage_${sha256(`${customerId}\u0000${eventId}`).slice(0, 40)}`;
}

/** The job id of an ingested batch: the same batch posted again while its job exists is one job. */
export function usageBatchJobId(customerId: string, requestIds: readonly string[]): string {
  return `usagebatch_${sha256(`${customerId}\u0000${requestIds.join("\u0000")}`).slice(0, 40)}`;
}

export function sha256(text: string): string {
  return createHash("sha256").update(text).digest("hex");
}

/** JSON with object keys sorted, so equal bodies hash equally whatever the key order. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  if (value && typeof value === "object") {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(",")}}`;
  }
  return JSON.stringify(value);
}
