import { createHash, randomUUID } from "node:crypto";

/**
 * The request id of a chat: the BullMQ job id and the usage row's unique key. With an
 * Idempotency-Key it is derived from (customer, key) so retries from the client land on the same
 * job and row. BullMQ job ids may not contain ":" nor be all digits; both forms start with "chat_".
 */
export function chatRequestId(customerId: string, idempotencyKey?: string): string {
  if (idempotencyKey === undefined) return `chat_${randomUUID().replaceAll("-", "")}`;
  return `chat_${sha256(`${customerId}\u0000${idempotencyKey}`).slice(0, 40)}`;
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
