import type { Job } from "bullmq";
import type { WebDeps } from "../../deps.js";
import { HttpError, unavailable } from "../../errors.js";
import { getStoredChat, type StoredChat } from "../../chat/requests.js";
import { upstreamFailure } from "../../llm/provider-errors.js";
import type { ChatCompletion } from "../../llm/client.js";
import type { ChatError, ChatJobData } from "../../queues/queues.js";

type Deps = Pick<WebDeps, "db" | "queues">;

export type ChatStatus = "queued" | "running" | "succeeded" | "failed" | "canceled";

/** Where a chat stands, from its job while Redis has it and from Postgres (the truth) after. */
export interface ChatState {
  status: ChatStatus;
  completion?: ChatCompletion;
  error?: HttpError;
  /** The job, while Redis still has it. */
  job?: Job<ChatJobData>;
}

/** The chat's job, or undefined; a Redis failure is a 503. */
export async function getChatJob(deps: Deps, id: string): Promise<Job<ChatJobData> | undefined> {
  try {
    return await deps.queues.chat.getJob(id);
  } catch (err) {
    throw unavailable("The request queue is unavailable; retry shortly.", err);
  }
}

/**
 * A customer's chat by request id, or undefined when there is none. A final outcome kept in
 * Postgres answers without asking Redis; a chat Postgres holds as pending and Redis no longer
 * knows was lost before it was answered (and was not billed).
 */
export async function chatState(
  deps: Deps,
  requestId: string,
  customerId: string,
): Promise<ChatState | undefined> {
  const stored = await getStoredChat(deps.db, requestId);
  if (stored && stored.customerId !== customerId) return undefined;
  if (stored && stored.status !== "pending") return storedState(stored);
  const job = await getChatJob(deps, requestId);
  if (job && job.data.customerId === customerId) return jobState(job);
  if (!stored) return undefined;
  return {
    status: "failed",
    error: new HttpError(
      502,
      "This request was lost before it was answered and was not billed; send it again " +
        "(with the same Idempotency-Key it runs once).",
      "server_error",
      "request_lost",
    ),
  };
}

export function storedState(stored: StoredChat): ChatState {
  if (stored.status === "succeeded") return { status: "succeeded", completion: stored.response! };
  if (stored.status === "failed") return { status: "failed", error: httpErrorOf(stored.error!) };
  return { status: "queued" };
}

/**
 * A chat's state from one snapshot of its job hash. (getJob then getState is two reads: a job that
 * finishes between them would look completed without its result.)
 */
export function jobState(job: Job<ChatJobData>): ChatState {
  if (!job.finishedOn) return { status: job.processedOn ? "running" : "queued", job };
  const result = job.returnvalue as ChatCompletion | { abandoned: true } | null;
  if (result && "abandoned" in result) return { status: "canceled", job };
  if (result) return { status: "succeeded", completion: result, job };
  return { status: "failed", error: failureOf(job), job };
}

/**
 * A failed chat's error for the caller: the provider's 4xx as the worker recorded it, or a generic
 * 502 when retries ran out. Never `failedReason`: it holds the provider's raw text (operator only).
 */
function failureOf(job: Job<ChatJobData>): HttpError {
  return httpErrorOf(job.data.error ?? upstreamFailure(job.data.requestId));
}

function httpErrorOf(error: ChatError): HttpError {
  return new HttpError(error.status, error.message, error.type as never, error.code);
}

/** A chat whose retries ran out on transient provider errors: a repeat of its key runs it again. */
export function failedTransiently(job: Job<ChatJobData>): boolean {
  return Boolean(job.finishedOn && !job.returnvalue && !job.data.error);
}

/** A stream whose client left before it started: nothing ran, a repeat of its key runs it. */
export function abandoned(job: Job<ChatJobData>): boolean {
  return jobState(job).status === "canceled";
}
