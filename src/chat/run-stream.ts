import type { Config } from "../config.js";
import type { Db } from "../platform/db.js";
import { PermanentError } from "../errors.js";
import type { Metrics } from "../platform/metrics.js";
import type { RedisClient } from "../platform/redis.js";
import { billChat } from "../billing/ledger/bill-chat.js";
import type { AfterUsageDeps } from "../billing/after-usage.js";
import type { Plan } from "../billing/pricing/plans.js";
import type { EndUserQuota, Quota } from "../billing/ledger/quota.js";
import { releaseChatHolds } from "./holds.js";
import {
  errorEntry,
  streamError,
  streamWriter,
  type StreamEntry,
  type StreamError,
  type StreamWriter,
} from "./stream/protocol.js";
import type { ChatCompletion, ChatRequest, Llm } from "../llm/client.js";
import {
  createChunkAccumulator,
  type ChatCompletionChunk,
  type ChunkAccumulator,
  type ProviderChunk,
} from "../llm/stream.js";
import { capCompletion } from "../llm/completion-cap.js";
import { logProviderError, upstreamFailure } from "../llm/provider-errors.js";
import type { AbandonedChat } from "../queues/queues.js";
import { chatUsage, completionCap, refusalOf, type ChatAttempt } from "./attempt.js";

export type StreamRunDeps = AfterUsageDeps & {
  config: Config;
  db: Db;
  redis: Pick<RedisClient, "pipeline" | "exists" | "del">;
  llm: Pick<Llm, "stream">;
  plans: { get(id: string): Promise<Plan> };
  metrics: Pick<Metrics, "tokens" | "modelLabel">;
  quota: Pick<Quota, "settle" | "release">;
  endUserQuota: Pick<EndUserQuota, "settle" | "release">;
};

// Cancellation is checked with every chunk written; while the provider is silent (before the first
// token, or stalled) it is also polled at this interval.
const IDLE_CANCEL_CHECK_MS = 500;

/**
 * A streamed chat: relays the provider's chunks into the request's Redis stream, stops when the
 * client went away, and bills exactly once what was produced — from the provider's usage chunk, or
 * estimated (and marked so) when there is none or the stream was cut short.
 */
export async function runStream(
  deps: StreamRunDeps,
  attempt: ChatAttempt,
): Promise<ChatCompletion | AbandonedChat> {
  const { data, log } = attempt;
  const out = streamWriter(deps, data.requestId);
  const acc = createChunkAccumulator();

  // The usage chunk is written once the row is: it carries the request's cost.
  let usageShown = false;
  const settle = async (clientError?: StreamError): Promise<ChatCompletion> => {
    const usage = await chatUsage(data.request, acc.usage, acc.text, acc.promptUsage);
    // The row goes in before [DONE]: a client that saw the end can already see its usage.
    const billed = await billChat(deps, data, acc.toCompletion(data.request.model), usage);
    const { inserted, billableTokens, completion } = billed;
    const usageEntry: StreamEntry[] = usageShown ? [] : [{ type: "usage", data: usageChunk(completion) }];
    const error: StreamEntry[] = clientError ? [errorEntry(clientError)] : [];
    await out.append(...usageEntry, ...error, { type: "end" });
    log.info(
      { inserted, billableTokens, source: usage.source, chargeMicros: billed.charge.chargeMicros },
      "stream usage recorded",
    );
    return completion;
  };

  // A retry after the worker died mid-stream: the client already saw what the stream holds and a
  // second generation cannot be spliced in, so bill what the stream holds and end it.
  const { earlier, cancelled: leftEarly } = await out.begin();
  if (earlier.length > 0) {
    for (const entry of earlier) addEntry(acc, entry);
    usageShown = earlier.some((e) => e.type === "usage");
    log.warn({ entries: earlier.length }, "settling a stream that an earlier attempt began");
    const ended = earlier.some((e) => e.type === "end" || e.type === "error");
    return settle(
      ended || acc.usage
        ? undefined
        : streamError(
            502,
            "The worker relaying this stream stopped mid-answer; the partial answer was billed. Retry the request.",
            "server_error",
            "stream_interrupted",
          ),
    );
  }

  if (leftEarly) {
    // Nobody waits for this answer (the client left, or the relay gave up, while the job was
    // queued): call no provider, bill nothing, give the hold back, and leave no trace a keyed
    // retry would replay — it runs the chat for real.
    await releaseChatHolds(deps, data);
    await out.clear();
    log.info("stream abandoned before it started: no provider call, nothing billed");
    return { abandoned: true };
  }

  const controller = new AbortController();
  let cancelled = false;
  attempt.signal?.addEventListener("abort", () => controller.abort("shutdown"), { once: true });
  let lastChunkAt = Date.now();
  const poll = setInterval(() => {
    if (Date.now() - lastChunkAt < IDLE_CANCEL_CHECK_MS) return;
    out.cancelled().then(
      (yes) => {
        if (!yes) return;
        cancelled = true;
        controller.abort("cancelled");
      },
      () => {},
    );
  }, IDLE_CANCEL_CHECK_MS);
  // Every content delta is at least one token: a provider that ignores the cap is cut off here.
  const cap = completionCap(data);
  let deltas = 0;
  let capped = false;
  try {
    const request = capCompletion(data.request as ChatRequest, cap);
    for await (const chunk of deps.llm.stream(request, { signal: controller.signal })) {
      lastChunkAt = Date.now();
      if (chunk.choices[0]?.delta?.content && cap !== undefined && ++deltas > cap) {
        capped = true;
        controller.abort("limit");
        break;
      }
      acc.add(chunk);
      if (await out.append(...entriesOf(chunk))) {
        cancelled = true;
        controller.abort("cancelled");
        break;
      }
    }
  } catch (err) {
    if (!controller.signal.aborted) return failed(attempt, acc, err, out, settle);
  } finally {
    clearInterval(poll);
  }

  if (cancelled) {
    log.info({ completionChars: acc.text.length }, "client disconnected: generation stopped");
    return settle();
  }
  if (capped) {
    log.warn({ cap }, "the provider ignored the completion cap: stream stopped at the reservation");
    const stop = lengthChunk(acc.toCompletion(data.request.model));
    acc.add(stop);
    await out.append(...entriesOf(stop));
    return settle();
  }
  if (controller.signal.aborted) {
    // Shutting down. Nothing shown yet: another worker can run the whole job again.
    if (!acc.started) await attempt.handBackIfShuttingDown();
    return settle(
      streamError(
        503,
        "The worker relaying this stream shut down; the partial answer was billed. Retry the request.",
        "server_error",
        "worker_shutdown",
      ),
    );
  }
  return settle();
}

/** A provider failure mid-stream. Before any output the job retries as usual; after it, it settles. */
async function failed(
  { data, log, lastAttempt, keep }: ChatAttempt,
  acc: ChunkAccumulator,
  err: unknown,
  out: StreamWriter,
  settle: (clientError?: StreamError) => Promise<ChatCompletion>,
): Promise<ChatCompletion> {
  logProviderError(log, err);
  if (acc.started) {
    const message = `The upstream model provider failed mid-answer (request ${data.requestId}); the partial answer was billed. Retry later.`;
    return settle(streamError(502, message, "server_error", "upstream_error"));
  }
  if (err instanceof PermanentError) {
    const error = streamError(err.status, err.message, err.type, err.code);
    await keep({ error: refusalOf(err) });
    await out.append(errorEntry(error), { type: "end" });
    throw err;
  }
  if (lastAttempt) {
    const upstream = upstreamFailure(data.requestId);
    const error = streamError(upstream.status, upstream.message, upstream.type, upstream.code);
    await out.append(errorEntry(error), { type: "end" });
  }
  throw err;
}

/**
 * A provider chunk's content; its usage is kept back for the usage chunk written after billing
 * (usageChunk), which the client sees only if it asked (`stream_options.include_usage`), and its
 * prompt_usage is meterline's alone.
 */
function entriesOf(chunk: ProviderChunk): StreamEntry[] {
  const { usage, prompt_usage: _promptUsage, ...content } = chunk;
  return !usage || chunk.choices.length > 0 ? [{ type: "chunk", data: JSON.stringify(content) }] : [];
}

/** The final usage chunk, as OpenAI sends it (no choices), with the billed usage and its cost. */
function usageChunk({ id, created, model, usage }: ChatCompletion): string {
  return JSON.stringify({ id, object: "chat.completion.chunk", created, model, choices: [], usage });
}

/** The chunk that ends a stream cut at its reservation, as a provider's own cap would. */
function lengthChunk(sofar: ChatCompletion): ChatCompletionChunk {
  const { id, created, model } = sofar;
  const choices = [{ index: 0, delta: {}, finish_reason: "length" as const }];
  return { id, created, model, object: "chat.completion.chunk", choices };
}

function addEntry(acc: ChunkAccumulator, entry: StreamEntry): void {
  if (entry.type === "chunk" || entry.type === "usage") acc.add(JSON.parse(entry.data));
}
