import { Router, type Request } from "express";
import type { WebDeps } from "../../deps.js";
import { HttpError, notFound, unavailable } from "../../errors.js";
import { accepted, answerState, answerStream, answerSync } from "./answers.js";
import { chatJobData, enqueueChat } from "./enqueue.js";
import { claimRequest, finalOutcome, findJob, resumeJob, type Holds } from "./idempotency.js";
import { endUserLimit, holdEndUserQuota } from "./end-user.js";
import { holdChatCredits, releaseHolds } from "./credits.js";
import { estimateChat, holdChatQuota } from "./quota.js";
import { parseChatCall } from "./request.js";
import { chatState } from "./state.js";

type Deps = Pick<
  WebDeps,
  | "config"
  | "db"
  | "redis"
  | "queues"
  | "quota"
  | "endUserQuota"
  | "creditCounter"
  | "chatReplies"
  | "logger"
  | "streamReader"
  | "streamSlots"
  | "draining"
>;

/** POST /v1/chat/completions and GET /v1/chats/:id. Expects customerAuth and a JSON parser before it. */
export function chatRoutes(deps: Deps): Router {
  const router = Router();

  router.post("/chat/completions", async (req, res) => {
    const customer = req.customer!;
    const call = parseChatCall(req, deps.config);
    if (call.mode === "stream") {
      // Taken before any claim, quota hold or job; "close" fires when the response ends either way.
      const slot = await deps.streamSlots.acquire(customer.customerId);
      res.once("close", slot.release);
    }

    const claim = await claimRequest(deps, customer.customerId, call);
    const { requestId } = claim;
    res.setHeader("meterline-request-id", requestId);
    const outcome = finalOutcome(claim);
    if (outcome) return answerState(res, requestId, outcome, call);

    const found = await findJob(deps, claim);
    // A job that runs on (not again) holds, or has settled, its own reservations.
    const jobHolds = found.job !== undefined && !found.rerun;
    const limit = await endUserLimit(deps, customer.customerId, call.endUser);
    const estimate = await estimateChat(deps.config, customer, call.body, limit !== undefined);
    // Each hold taken is given back when a later one refuses or the job cannot be added.
    const holds: Holds = { endUser: call.endUser };
    const releaseOnError = async (err: unknown) => {
      await releaseHolds(deps, customer.customerId, requestId, holds);
      throw err;
    };
    holds.quota = await holdChatQuota(deps, customer, requestId, estimate, jobHolds);
    holds.endUserQuota = await holdEndUserQuota(
      deps,
      customer,
      requestId,
      call.endUser,
      limit,
      estimate,
      jobHolds,
    ).catch(releaseOnError);
    holds.credits = await holdChatCredits(deps, customer, requestId, estimate, jobHolds).catch(
      releaseOnError,
    );
    await resumeJob(deps, found, holds, call.mode);
    // A synchronous chat this request creates is listened for before its job is added.
    const listen = call.mode === "sync" && found.job === undefined;
    const added = await enqueueChat(deps, chatJobData(customer, call, claim, holds), listen).catch(
      // No job holds them: give the reservations back (best effort; Redis may be what failed).
      (err: unknown) => (found.job ? Promise.reject(err) : releaseOnError(err)),
    );

    if (call.mode === "async") return accepted(res, requestId);
    if (call.mode === "stream") {
      return answerStream(deps, res, requestId, call.includeUsage, found.job && added.job);
    }
    await answerSync(deps, res, customer.customerId, added);
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
