import { Router, type Request, type Response } from "express";
import type { Job } from "bullmq";
import type { WebDeps } from "../../deps.js";
import { badRequest, HttpError, notFound, unavailable } from "../../errors.js";
import { canonicalJson, chatRequestId, sha256 } from "../../ids.js";
import { resolvePrice } from "../../billing/prices.js";
import type { ChatJobData } from "../../queues.js";
import { chatRequestSchema, parseBody } from "../chat-request.js";
import { holdChatQuota } from "../chat-quota.js";
import { listenForChatOutcome } from "../chat-outcome.js";
import { unlessDraining } from "../drain.js";
import { relayChatStream } from "../sse.js";

type Deps = Pick<
  WebDeps,
  "config" | "db" | "redis" | "queues" | "quota" | "chatEvents" | "logger" | "streamReaders" | "draining"
>;

const IDEMPOTENCY_KEY = /^[\x21-\x7e]{1,255}$/;

/** POST /v1/chat/completions and GET /v1/chats/:id. Expects customerAuth and a JSON parser before it. */
export function chatRoutes(deps: Deps): Router {
  const router = Router();

  router.post("/chat/completions", async (req, res) => {
    const customer = req.customer!;
    const body = parseBody(chatRequestSchema, req.body);
    if (!resolvePrice(body.model, deps.config.defaultModelPrice)) {
      throw badRequest(
        `The model '${body.model}' does not exist or has no price configured.`,
        "model_not_found",
        "model",
      );
    }

    const idempotencyKey = req.header("idempotency-key");
    if (idempotencyKey !== undefined && !IDEMPOTENCY_KEY.test(idempotencyKey)) {
      throw badRequest(
        "Idempotency-Key must be 1–255 printable ASCII characters.",
        "invalid_idempotency_key",
      );
    }
    const requestId = chatRequestId(customer.customerId, idempotencyKey);
    // Only a keyed request can be repeated, so only it pays for hashing its body.
    const bodyHash = idempotencyKey === undefined ? undefined : sha256(canonicalJson(body));
    if (bodyHash !== undefined) await claimIdempotencyKey(deps, requestId, bodyHash);
    // A keyed repeat of a chat whose retries ran out on transient provider errors runs it again, as
    // a client retrying a 502 expects; a chat that succeeded or failed on its own 4xx answers as before.
    const existing = bodyHash !== undefined ? await getJob(deps, requestId) : undefined;
    const rerun = existing && failedTransiently(existing) ? existing : undefined;
    const quota = await holdChatQuota(deps, customer, requestId, body, existing !== undefined && !rerun);
    if (rerun) await runAgain(rerun, quota);

    const respondAsync = /\brespond-async\b/i.test(req.header("prefer") ?? "");
    // Async requests are polled, never streamed; the worker always asks the provider for usage.
    const { stream, stream_options: streamOptions, ...request } = body;
    const streaming = stream === true && !respondAsync;
    const data: ChatJobData = {
      requestId,
      customerId: customer.customerId,
      planId: customer.plan.id,
      request,
      ...(bodyHash ? { bodyHash } : {}),
      receivedAt: new Date().toISOString(),
      ...(streaming ? { stream: true } : {}),
      ...(quota ? { quota } : {}),
    };
    // A synchronous chat this request creates is awaited by listening before the add (chat-outcome.ts).
    const outcome =
      !respondAsync && !streaming && existing === undefined
        ? await listenForChatOutcome(deps.chatEvents, requestId, deps.config.chat.waitMs).catch(
            (err: unknown) => {
              throw unavailable("The request queue is unavailable; retry shortly.", err);
            },
          )
        : undefined;
    let job: Job<ChatJobData>;
    try {
      // A repeated request id is ignored by BullMQ while the job exists: the first payload wins.
      job = await deps.queues.chat.add("chat", data, { jobId: requestId });
    } catch (err) {
      outcome?.cancel();
      throw unavailable("The request queue is unavailable; retry shortly.", err);
    }
    res.setHeader("meterline-request-id", requestId);

    if (respondAsync) return accepted(res, requestId);
    if (streaming) {
      const finished = async () => {
        const stored = await getJob(deps, requestId);
        return stored?.finishedOn ? (stored.returnvalue ?? undefined) : undefined;
      };
      return relayChatStream(deps, req, res, requestId, streamOptions?.include_usage === true, finished);
    }
    try {
      const completion = await unlessDraining(
        outcome?.finished ?? job.waitUntilFinished(deps.chatEvents, deps.config.chat.waitMs),
        deps.draining.signal,
      );
      res.json(completion);
    } catch {
      await answerUnfinished(deps, res, requestId);
    } finally {
      outcome?.cancel();
    }
  });

  router.get("/chats/:id", async (req: Request<{ id: string }>, res) => {
    const job = await getJob(deps, req.params.id);
    if (!job || job.data.customerId !== req.customer!.customerId)
      throw notFound(`No chat request '${req.params.id}'.`);
    const status = statusOf(job);
    if (status === "succeeded") return res.json({ id: job.id, status, completion: job.returnvalue });
    if (status === "failed") return res.json({ id: job.id, status, error: failureOf(job).toBody().error });
    res.json({ id: job.id, status });
  });

  return router;
}

/** Same key, same body → same job; same key, other body → 422, as Stripe and OpenAI do. */
async function claimIdempotencyKey(deps: Deps, requestId: string, bodyHash: string): Promise<void> {
  const key = `${deps.config.queuePrefix}:idem:${requestId}`;
  let previous: string | null;
  try {
    const set = await deps.redis.set(key, bodyHash, "EX", deps.config.idempotencyTtlS, "NX");
    previous = set === "OK" ? bodyHash : await deps.redis.get(key);
  } catch (err) {
    throw unavailable("The request queue is unavailable; retry shortly.", err);
  }
  if (previous !== null && previous !== bodyHash) {
    throw new HttpError(
      422,
      "This Idempotency-Key was already used with a different request body.",
      "invalid_request_error",
      "idempotency_key_reused",
    );
  }
}

function failedTransiently(job: Job<ChatJobData>): boolean {
  return Boolean(job.finishedOn && !job.returnvalue && !job.data.error && !job.data.stream);
}

/** Back to the wait list with a fresh retry budget; a concurrent repeat that got there first wins. */
async function runAgain(job: Job<ChatJobData>, quota: ChatJobData["quota"]): Promise<void> {
  try {
    if (quota) await job.updateData({ ...job.data, quota });
    await job.retry("failed", { resetAttemptsMade: true, resetAttemptsStarted: true });
  } catch (err) {
    if ((await job.getState().catch(() => "unknown")) === "failed") {
      throw unavailable("The request queue is unavailable; retry shortly.", err);
    }
  }
}

async function getJob(deps: Deps, id: string): Promise<Job<ChatJobData> | undefined> {
  try {
    return await deps.queues.chat.getJob(id);
  } catch (err) {
    throw unavailable("The request queue is unavailable; retry shortly.", err);
  }
}

async function answerUnfinished(deps: Deps, res: Response, requestId: string): Promise<void> {
  const job = await getJob(deps, requestId);
  const status = job ? statusOf(job) : "queued";
  if (status === "succeeded") {
    res.json(job!.returnvalue);
    return;
  }
  if (status === "failed") {
    // The worker releases too; both are idempotent, and this one holds when the worker died first.
    if (job!.data.quota) await deps.quota.release(job!.data.customerId, requestId, job!.data.quota);
    const error = failureOf(job!);
    res.status(error.status).json(error.toBody());
    return;
  }
  // Still queued or running after the wait: the caller polls instead of holding the connection.
  accepted(res, requestId);
}

/**
 * A chat's status from one snapshot of its job hash. (getJob then getState is two reads: a job that
 * finishes between them would look completed without its result.)
 */
function statusOf(job: Job<ChatJobData>): "queued" | "running" | "succeeded" | "failed" {
  if (job.finishedOn) return job.returnvalue ? "succeeded" : "failed";
  return job.processedOn ? "running" : "queued";
}

function accepted(res: Response, requestId: string): void {
  res
    .status(202)
    .location(`/v1/chats/${requestId}`)
    .json({ id: requestId, object: "chat.request", status: "queued" });
}

/** A failed chat's error for the caller: the provider's own 4xx, or 502 when retries ran out. */
function failureOf(job: Job<ChatJobData>): HttpError {
  const error = job.data.error;
  if (error) return new HttpError(error.status, error.message, error.type as never, error.code);
  return new HttpError(
    502,
    `The upstream LLM failed after ${job.attemptsMade} attempts: ${job.failedReason}`,
    "server_error",
    "upstream_error",
  );
}
