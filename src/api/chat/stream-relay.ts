import type { Request, Response } from "express";
import type { Config } from "../../config.js";
import { chatCancelKey, chatStreamKey, parseEntry, type StreamError } from "../../chat/stream/protocol.js";
import { unavailable } from "../../errors.js";
import type { ChatCompletion } from "../../llm/client.js";
import { chunksOf } from "../../llm/stream.js";
import type { Logger } from "../../platform/logger.js";
import type { Redis } from "../../platform/redis.js";
import type { StreamReader } from "../../chat/stream/reader.js";

type Deps = {
  config: Pick<Config, "queuePrefix" | "streamTtlS" | "chat">;
  redis: Pick<Redis, "set">;
  streamReader: StreamReader;
  logger: Logger;
};

// Short blocks let the loop notice a client that went away; the idle limit is CHAT_WAIT_MS.
const BLOCK_MS = 1_000;
const KEEPALIVE_MS = 15_000;

/**
 * Relays a streaming chat job's Redis stream to the client as server-sent events in OpenAI's chunk
 * format, ending with `data: [DONE]`. Reads from the start, so a repeated Idempotency-Key replays.
 * An error before any output answers with its HTTP status, as OpenAI does; after it, as an
 * `error` event. A client that goes away sets the cancel key the worker checks. A replay after the
 * stream expired (CHAT_STREAM_TTL_S) is served from the finished job (`finishedChat`).
 */
export async function relayChatStream(
  deps: Deps,
  req: Request,
  res: Response,
  requestId: string,
  includeUsage: boolean,
  finishedChat: () => Promise<ChatCompletion | undefined>,
): Promise<void> {
  const key = chatStreamKey(deps.config, requestId);
  const stream = deps.streamReader.subscribe(key);
  let finished = false;
  let gone = false;
  // Billed for what was served: whenever nobody will read the rest — the client left, or this relay
  // gave up — the worker is told to stop, and bills only what the provider produced until then.
  const cancel = () => {
    deps.redis
      .set(chatCancelKey(deps.config, requestId), "1", "EX", deps.config.streamTtlS)
      .catch((err: unknown) => deps.logger.warn({ err, requestId }, "could not signal a stream cancel"));
  };
  res.once("close", () => {
    if (finished) return;
    gone = true;
    cancel();
  });
  const open = () => {
    if (res.headersSent) return;
    res.status(200).set({
      "content-type": "text/event-stream; charset=utf-8",
      "cache-control": "no-cache",
      connection: "keep-alive",
      "x-accel-buffering": "no",
    });
    res.flushHeaders();
  };
  const write = (data: string) => res.write(`data: ${data}\n\n`);

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
        write(
          JSON.stringify({ error: serverError("The stream was lost; retry the request.", "stream_lost") }),
        );
        break;
      }
      if (!reply && lastId === "0") {
        // Nothing at all after a full block: the job has not started, or its stream expired.
        const completion = await finishedChat();
        if (completion) {
          finished = true;
          replayCompletion(res, completion, includeUsage);
          break;
        }
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
        const timeout = {
          error: serverError(
            "No answer from the model in time; the request was cancelled and is billed only for what " +
              "the model produced before the cancel. Retry the request.",
            "timeout",
          ),
        };
        if (!res.headersSent) res.status(504).json(timeout);
        else write(JSON.stringify(timeout));
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
          const failure = JSON.parse(entry.data) as StreamError;
          if (!res.headersSent) res.status(failure.status).json({ error: failure.error });
          else write(JSON.stringify({ error: failure.error }));
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
  if (!res.headersSent) {
    res.status(200).set({
      "content-type": "text/event-stream; charset=utf-8",
      "cache-control": "no-cache",
      "x-accel-buffering": "no",
    });
  }
  for (const chunk of chunksOf(completion))
    if (!chunk.usage || includeUsage) res.write(`data: ${JSON.stringify(chunk)}\n\n`);
  res.end("data: [DONE]\n\n");
}

const serverError = (message: string, code: string) => ({ message, type: "server_error", param: null, code });
