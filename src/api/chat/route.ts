import { Router, type Request, type Response } from "express";
import type { Job } from "bullmq";
import type { WebDeps } from "../../deps.js";
import { badRequest, HttpError, notFound, unavailable } from "../../errors.js";
import { canonicalJson, idempotencyKeyHash, newChatRequestId, sha256 } from "../../platform/ids.js";
import { resolvePrice } from "../../billing/pricing/prices.js";
import { claimIdempotencyKey, reopenChat, type StoredChat } from "../../chat/requests.js";
import { chatCancelKey, chatStreamKey } from "../../chat/stream/protocol.js";
import type { ChatJobData } from "../../queues/queues.js";
import { chatRequestSchema, parseBody, type ChatRequestBody } from "./request.js";
import { holdChatQuota } from "./quota.js";
import { refuseOversizedJob } from "./job-size.js";
import { listenForChatOutcome } from "./outcome.js";
import { abandoned, chatState, failedTransiently, getChatJob, storedState } from "./state.js";
import { unlessDraining } from "./drain.js";
import { relayChatStream, replayCompletion } from "./stream-relay.js";

type Deps = Pick<
  WebDeps,
  "config" | "db" | "redis" | "queues" | "quota" | "chatEvents" | "logger" | "streamReader" | "draining"
> &
  Pick<WebDeps, "streamSlots">;

type Mode = "sync" | "async" | "stream";

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
    const respondAsync = /\brespond-async\b/i.test(req.header("prefer") ?? "");
    // Async requests are polled, never streamed; the worker always asks the provider for usage.
    const { stream, stream_options: streamOptions, ...request } = body;
    const mode: Mode = respondAsync ? "async" : stream === true ? "stream" : "sync";
    const includeUsage = streamOptions?.include_usage === true;
    refuseOversizedJob(deps.config, request);
    // Taken before any claim, quota hold or job; "close" fires when the response ends either way.
    const slot = mode === "stream" ? await deps.streamSlots.acquire(customer.customerId) : undefined;
    if (slot) res.once("close", slot.release);
    // Keyed and async chats keep their outcome in Postgres for as long as it is promised.
    const keepS = Math.max(
      idempotencyKey === undefined ? 0 : deps.config.idempotencyTtlS,
      mode === "async" ? deps.config.jobRetentionS : 0,
    );

    const claim =
      idempotencyKey === undefined
        ? undefined
        : await claimKey(deps, customer.customerId, idempotencyKey, body, keepS);
    const requestId = claim?.chat.requestId ?? newChatRequestId();
    res.setHeader("meterline-request-id", requestId);
    const repeat = claim !== undefined && !claim.fresh;
    if (repeat && claim.chat.status !== "pending") {
      const outcome = storedState(claim.chat);
      const rerunnable = claim.chat.status === "failed" && claim.chat.retryable;
      if (!rerunnable) return answerState(res, mode, requestId, outcome, includeUsage);
      // A keyed repeat of a chat whose retries ran out on transient errors runs it again, as a client
      // retrying a 502 expects; concurrent repeats share the one rerun.
      await reopenChat(deps.db, requestId).catch((err: unknown) => {
        throw unavailable("The request store is unavailable; retry shortly.", err);
      });
    }

    // Only a repeat can find a job: a fresh claim's request id is new.
    const existing = repeat ? await getChatJob(deps, requestId) : undefined;
    const rerun = existing && (failedTransiently(existing) || abandoned(existing)) ? existing : undefined;
    const quota = await holdChatQuota(deps, customer, requestId, body, existing !== undefined && !rerun);
    if (rerun) await runAgain(deps, rerun, quota);
    else if (existing && mode === "stream" && !existing.finishedOn) {
      // Joining a stream that has not ended: a cancel left by an earlier client must not stop it.
      await deps.redis.del(chatCancelKey(deps.config, requestId)).catch(() => {});
    }

    const data: ChatJobData = {
      requestId,
      customerId: customer.customerId,
      planId: customer.plan.id,
      request,
      ...(claim ? { bodyHash: claim.chat.bodyHash! } : {}),
      ...(keepS > 0 ? { keepS } : {}),
      receivedAt: new Date().toISOString(),
      ...(mode === "stream" ? { stream: true } : {}),
      ...(quota ? { quota } : {}),
    };
    // A synchronous chat this request creates is awaited by listening before the add (chat-outcome.ts).
    const outcome =
      mode === "sync" && existing === undefined
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

    if (mode === "async") return accepted(res, requestId);
    if (mode === "stream") {
      const finished = async () => {
        const state = await chatState(deps, requestId, customer.customerId);
        return state?.status === "succeeded" ? state.completion : undefined;
      };
      return relayChatStream(deps, req, res, requestId, includeUsage, finished);
    }
    try {
      const completion = await unlessDraining(
        outcome?.finished ?? job.waitUntilFinished(deps.chatEvents, deps.config.chat.waitMs),
        deps.draining.signal,
      );
      res.json(completion);
    } catch {
      await answerUnfinished(deps, res, requestId, customer.customerId);
    } finally {
      outcome?.cancel();
    }
  });

  router.get("/chats/:id", async (req: Request<{ id: string }>, res) => {
    const state = await chatState(deps, req.params.id, req.customer!.customerId).catch((err: unknown) => {
      if (err instanceof HttpError) throw err;
      throw unavailable("The request store is unavailable; retry shortly.", err);
    });
    if (!state) throw notFound(`No chat request '${req.params.id}'.`);
    const { status } = state;
    if (status === "succeeded") return res.json({ id: req.params.id, status, completion: state.completion });
    if (status === "failed")
      return res.json({ id: req.params.id, status, error: state.error!.toBody().error });
    res.json({ id: req.params.id, status });
  });

  return router;
}

/** Same key, same body → the same request; same key, other body → 422, as Stripe and OpenAI do. */
async function claimKey(
  deps: Deps,
  customerId: string,
  idempotencyKey: string,
  body: ChatRequestBody,
  keepS: number,
): Promise<{ fresh: boolean; chat: StoredChat }> {
  const bodyHash = sha256(canonicalJson(body));
  let claim: { fresh: boolean; chat: StoredChat };
  try {
    claim = await claimIdempotencyKey(deps.db, {
      requestId: newChatRequestId(),
      customerId,
      keyHash: idempotencyKeyHash(customerId, idempotencyKey),
      bodyHash,
      keepS,
    });
  } catch (err) {
    throw unavailable("The request store is unavailable; retry shortly.", err);
  }
  if (claim.chat.bodyHash !== bodyHash) {
    throw new HttpError(
      422,
      "This Idempotency-Key was already used with a different request body.",
      "invalid_request_error",
      "idempotency_key_reused",
    );
  }
  return claim;
}

/**
 * Back to the wait list with a fresh retry budget; a concurrent repeat that got there first wins. A
 * stream's earlier attempt leaves nothing to replay: its entries are removed first.
 */
async function runAgain(deps: Deps, job: Job<ChatJobData>, quota: ChatJobData["quota"]): Promise<void> {
  const state = job.returnvalue ? "completed" : "failed";
  try {
    if (job.data.stream) {
      await deps.redis.del(
        chatStreamKey(deps.config, job.data.requestId),
        chatCancelKey(deps.config, job.data.requestId),
      );
    }
    if (quota) await job.updateData({ ...job.data, quota });
    await job.retry(state, { resetAttemptsMade: true, resetAttemptsStarted: true });
  } catch (err) {
    if ((await job.getState().catch(() => "unknown")) === state) {
      throw unavailable("The request queue is unavailable; retry shortly.", err);
    }
  }
}

/** Answers a chat from its state: the completion, its error, or 202 while it is not finished. */
function answerState(
  res: Response,
  mode: Mode,
  requestId: string,
  state: ReturnType<typeof storedState>,
  includeUsage: boolean,
): void {
  if (mode === "async" || (state.status !== "succeeded" && state.status !== "failed")) {
    return accepted(res, requestId);
  }
  if (state.status === "failed") {
    res.status(state.error!.status).json(state.error!.toBody());
    return;
  }
  if (mode === "stream") return replayCompletion(res, state.completion!, includeUsage);
  res.json(state.completion);
}

async function answerUnfinished(deps: Deps, res: Response, requestId: string, customerId: string) {
  const state = await chatState(deps, requestId, customerId);
  if (state?.status === "failed" && state.job?.data.quota) {
    // The worker releases too; both are idempotent, and this one holds when the worker died first.
    const { data } = state.job;
    await deps.quota.release(data.customerId, requestId, data.quota!);
  }
  // Still queued or running after the wait: the caller polls instead of holding the connection.
  answerState(res, "sync", requestId, state ?? { status: "queued" }, false);
}

function accepted(res: Response, requestId: string): void {
  res
    .status(202)
    .location(`/v1/chats/${requestId}`)
    .json({ id: requestId, object: "chat.request", status: "queued" });
}
