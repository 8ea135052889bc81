import type { Config } from "../../config.js";
import type { RedisClient } from "../../platform/redis.js";
import { QUEUE, queuePrefix } from "../../queues/queues.js";

/**
 * The protocol between a streaming chat job (the writer, in the worker) and the API's relay (the
 * reader, in the web process), over two Redis keys per request:
 * - the stream (`chatStreamKey`): the writer appends, in order, `chunk`s (OpenAI
 *   `chat.completion.chunk` JSON, relayed as they are), at most one `usage` chunk (relayed only to a
 *   client that asked for it), then `error` and/or `end`. An `end` ends every stream the writer
 *   finished; an `error` carries what the client is told (`StreamError`): its HTTP status while no
 *   output was sent, else an `error` event. Readers read from the start ("0"), so a repeated
 *   Idempotency-Key replays, and a retried job reads it to learn what the client already saw.
 * - the cancel mark (`chatCancelKey`): set by a reader that will not read the rest (the client
 *   left, or the relay gave up); the writer checks it and stops the provider.
 * Both expire after CHAT_STREAM_TTL_S.
 */
export type StreamEntry =
  | { type: "chunk"; data: string }
  | { type: "usage"; data: string }
  | { type: "error"; data: string }
  | { type: "end" };

/** What an `error` entry tells the client: the HTTP status before any output, and the error body. */
export type StreamError = {
  status: number;
  error: { message: string; type: string; param: string | null; code: string | null };
};

export const streamError = (
  status: number,
  message: string,
  type: string,
  code: string | null,
): StreamError => ({
  status,
  error: { message, type, param: null, code },
});

/** The entry that signals an error; the writer appends `end` after it. */
export const errorEntry = (error: StreamError): StreamEntry => ({
  type: "error",
  data: JSON.stringify(error),
});

/** The error an `error` entry carries. */
export const errorOf = (entry: { type: "error"; data: string }): StreamError =>
  JSON.parse(entry.data) as StreamError;

// Both keys share the chat queue's {hashtag}, so they live in the queue's Redis Cluster slot; the web
// process's one XREAD over every open stream (src/chat/stream/reader.ts) relies on it.
export const chatStreamKey = (config: Pick<Config, "queuePrefix">, requestId: string) =>
  `${queuePrefix(config.queuePrefix, QUEUE.chat)}:stream:${requestId}`;
export const chatCancelKey = (config: Pick<Config, "queuePrefix">, requestId: string) =>
  `${queuePrefix(config.queuePrefix, QUEUE.chat)}:cancel:${requestId}`;

/** A reader's signal that nobody will read the rest: the writer stops and bills what was produced. */
export async function requestCancel(
  deps: { config: Pick<Config, "queuePrefix" | "streamTtlS">; redis: Pick<RedisClient, "set"> },
  requestId: string,
): Promise<void> {
  await deps.redis.set(chatCancelKey(deps.config, requestId), "1", "EX", deps.config.streamTtlS);
}

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
    redis: Pick<RedisClient, "pipeline" | "exists" | "del">;
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
async function exec(pipeline: ReturnType<RedisClient["pipeline"]>): Promise<[Error | null, unknown][]> {
  const results = (await pipeline.exec()) ?? [];
  const failure = results.find(([error]) => error);
  if (failure) throw failure[0];
  return results;
}
