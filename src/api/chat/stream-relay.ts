import type { Response } from "express";
import type { Config } from "../../config.js";
import {
  chatStreamKey,
  errorOf,
  parseEntry,
  requestCancel,
  streamError,
  type StreamError,
} from "../../chat/stream/protocol.js";
import type { StreamReader } from "../../chat/stream/reader.js";
import { unavailable } from "../../errors.js";
import type { ChatCompletion } from "../../llm/client.js";
import { chunksOf } from "../../llm/stream.js";
import type { Logger } from "../../platform/logger.js";
import type { RedisClient } from "../../platform/redis.js";

type Deps = {
  config: Pick<Config, "queuePrefix" | "streamTtlS" | "chat">;
  redis: Pick<RedisClient, "set">;
  streamReader: StreamReader;
  logger: Logger;
};

/** What to relay: a chat's stream, and how its client asked for it. */
export interface Relay {
  requestId: string;
  includeUsage: boolean;
  /**
   * The chat's completion once its job finished (undefined if it did not succeed), for a job that
   * writes no stream or whose stream expired: replayed when the stream holds nothing. Never rejects.
   */
  completion?: Promise<ChatCompletion | undefined>;
}

// Short blocks let the loop notice a client that went away; the idle limit is CHAT_WAIT_MS.
const BLOCK_MS = 1_000;
const KEEPALIVE_MS = 15_000;

const SSE_HEADERS = {
  "content-type": "text/event-stream; charset=utf-8",
  "cache-control": "no-cache",
  "x-accel-buffering": "no",
};

/**
 * Relays a streaming chat job's Redis stream (src/chat/stream/protocol.ts) to the client as
 * server-sent events in OpenAI's chunk format, ending with `data: [DONE]`. An error before any
 * output answers with its HTTP status, as OpenAI does; after it, as an `error` event. Billed for what
 * was served: whenever nobody will read the rest (the client left, or this relay gave up) the
 * worker is told to stop, and bills only what the provider produced until then.
 */
export async function relayChatStream(deps: Deps, res: Response, relay: Relay): Promise<void> {
  const { requestId, includeUsage } = relay;
  const stream = deps.streamReader.subscribe(chatStreamKey(deps.config, requestId));
  let completion: ChatCompletion | undefined;
  void relay.completion?.then((finished) => (completion = finished));
  let finished = false;
  let gone = false;
  const cancel = () => {
    requestCancel(deps, requestId).catch((err: unknown) =>
      deps.logger.warn({ err, requestId }, "could not signal a stream cancel"),
    );
  };
  res.once("close", () => {
    if (finished) return;
    gone = true;
    cancel();
  });
  const open = () => {
    if (res.headersSent) return;
    res.status(200).set({ ...SSE_HEADERS, connection: "keep-alive" });
    res.flushHeaders();
  };
  const write = (data: string) => res.write(`data: ${data}\n\n`);
  // Before any output, as the response's status and body; after it, as an `error` event.
  const fail = (failure: StreamError) => {
    if (!res.headersSent) res.status(failure.status).json({ error: failure.error });
    else write(JSON.stringify({ error: failure.error }));
  };

  let lastId = "0";
  let idleSince = Date.now();
  let lastKeepAlive = 0;
  try {
    while (!gone) {
      let reply: [string, string[]][] | null;
      try {
        reply = await stream.read(BLOCK_MS);
      } catch (err) {
        if (!res.headersSent) throw unavailable("The request queue is unavailable; retry shortly.", err);
        cancel();
        fail(streamError(502, "The stream was lost; retry the request.", "server_error", "stream_lost"));
        break;
      }
      if (!reply && lastId === "0" && completion) {
        // Nothing at all after a full block, and the job finished: it wrote no stream, or it expired.
        finished = true;
        replayCompletion(res, completion, includeUsage);
        break;
      }
      if (!reply) {
        const idle = Date.now() - idleSince;
        if (idle < deps.config.chat.waitMs) {
          // Routers drop a response without a first byte (Heroku: 30 s) or idle too long: a comment
          // line keeps it open; SSE clients ignore it.
          if (idle - lastKeepAlive >= KEEPALIVE_MS) {
            lastKeepAlive = idle;
            open();
            res.write(": keep-alive\n\n");
          }
          continue;
        }
        cancel();
        const message =
          "No answer from the model in time; the request was cancelled and is billed only for what " +
          "the model produced before the cancel. Retry the request.";
        fail(streamError(504, message, "server_error", "timeout"));
        break;
      }
      idleSince = Date.now();
      lastKeepAlive = 0;
      for (const [id, fields] of reply) {
        lastId = id;
        const entry = parseEntry(fields);
        if (!entry) continue;
        if (entry.type === "chunk" || (entry.type === "usage" && includeUsage)) {
          open();
          write(entry.data);
        } else if (entry.type === "error") {
          fail(errorOf(entry));
          finished = true;
        } else if (entry.type === "end") {
          open();
          write("[DONE]");
          finished = true;
        }
        if (finished) break;
      }
      if (finished) break;
    }
  } finally {
    finished = true;
    stream.close();
    if (!res.writableEnded && res.headersSent) res.end();
  }
}

/** A finished chat as a whole stream: its chunks, the usage chunk if asked for, then [DONE]. */
export function replayCompletion(res: Response, completion: ChatCompletion, includeUsage: boolean): void {
  if (!res.headersSent) res.status(200).set(SSE_HEADERS);
  for (const chunk of chunksOf(completion))
    if (!chunk.usage || includeUsage) res.write(`data: ${JSON.stringify(chunk)}\n\n`);
  res.end("data: [DONE]\n\n");
}
