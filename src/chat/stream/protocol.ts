import type { Config } from "../../config.js";
import type { Redis } from "../../platform/redis.js";
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

export type StreamWriter = ReturnType<typeof streamWriter>;

/** The worker's side of one request's stream: what it appends, and whether the client left. */
export function streamWriter(
  deps: {
    config: Pick<Config, "queuePrefix" | "streamTtlS">;
    redis: Pick<Redis, "pipeline" | "exists" | "del">;
  },
  requestId: string,
) {
  const key = chatStreamKey(deps.config, requestId);
  const cancelKey = chatCancelKey(deps.config, requestId);
  const ttlMs = deps.config.streamTtlS * 1000;
  return {
    /** What an earlier attempt wrote, and whether the client already left: one round trip. */
    async begin(): Promise<{ earlier: StreamEntry[]; cancelled: boolean }> {
      const results = await exec(deps.redis.pipeline().xrange(key, "-", "+").exists(cancelKey));
      const rows = results[0]?.[1] as [string, string[]][];
      const earlier = rows.map(([, fields]) => parseEntry(fields)).filter((e) => e !== undefined);
      return { earlier, cancelled: results[1]?.[1] === 1 };
    },
    /** Appends entries and refreshes the TTL; returns whether the client asked to stop. One round trip. */
    async append(...entries: StreamEntry[]): Promise<boolean> {
      const pipeline = deps.redis.pipeline();
      for (const entry of entries) pipeline.xadd(key, ...(entryFields(entry) as ["*", ...string[]]));
      pipeline.pexpire(key, ttlMs);
      pipeline.exists(cancelKey);
      const results = await exec(pipeline);
      return results.at(-1)?.[1] === 1;
    },
    async cancelled(): Promise<boolean> {
      return (await deps.redis.exists(cancelKey)) === 1;
    },
    /** Removes the stream and its cancel mark: nothing of this attempt is left to replay. */
    async clear(): Promise<void> {
      await deps.redis.del(key, cancelKey);
    },
  };
}

/** Runs a pipeline; the first command error is thrown (ioredis only reports them per command). */
async function exec(pipeline: ReturnType<Redis["pipeline"]>): Promise<[Error | null, unknown][]> {
  const results = (await pipeline.exec()) ?? [];
  const failure = results.find(([error]) => error);
  if (failure) throw failure[0];
  return results;
}
