import type { Config } from "../../config.js";
import { QUEUE, queuePrefix } from "../../queues/queues.js";

/**
 * What a streaming chat job appends to its Redis stream, in order: `chunk`s (OpenAI
 * `chat.completion.chunk` JSON, relayed as they are), at most one `usage` chunk, then `error` and/or
 * `end`. The API relays them as server-sent events; a retried job reads them to learn what the
 * client already saw.
 */
export type StreamEntry =
  | { type: "chunk"; data: string }
  | { type: "usage"; data: string }
  | { type: "error"; data: string }
  | { type: "end" };

export type StreamError = {
  status: number;
  error: { message: string; type: string; param: string | null; code: string | null };
};

// Both keys share the chat queue's {hashtag}, so they live in the queue's Redis Cluster slot; the web
// process's one XREAD over every open stream (src/chat/stream/reader.ts) relies on it.
export const chatStreamKey = (config: Pick<Config, "queuePrefix">, requestId: string) =>
  `${queuePrefix(config.queuePrefix, QUEUE.chat)}:stream:${requestId}`;
export const chatCancelKey = (config: Pick<Config, "queuePrefix">, requestId: string) =>
  `${queuePrefix(config.queuePrefix, QUEUE.chat)}:cancel:${requestId}`;

/** XADD arguments after the key: an auto id and the entry's fields. */
export function entryFields(entry: StreamEntry): string[] {
  return entry.type === "end" ? ["*", "t", "end"] : ["*", "t", entry.type, "d", entry.data];
}

/** Reads one XRANGE / XREAD entry back; unknown shapes are skipped by the caller. */
export function parseEntry(fields: string[]): StreamEntry | undefined {
  const get = (name: string) => {
    const at = fields.indexOf(name);
    return at >= 0 && at % 2 === 0 ? fields[at + 1] : undefined;
  };
  const type = get("t");
  const data = get("d") ?? "";
  if (type === "end") return { type };
  if (type === "chunk" || type === "usage" || type === "error") return { type, data };
  return undefined;
}
