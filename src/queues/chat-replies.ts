import { randomBytes } from "node:crypto";
import type { Job, Queue, Worker } from "bullmq";
import type { Logger } from "../platform/logger.js";
import type { RedisClient } from "../platform/redis.js";
import { onFinalFailure } from "./failures.js";

/** A chat job's final outcome, as its worker tells the web instance waiting on it. */
export type ChatReply = { id: string; ok: true; value: unknown } | { id: string; ok: false; reason: string };

export interface ChatOutcome {
  /** The job's return value; rejects when it fails or nothing arrives within the wait. */
  readonly finished: Promise<unknown>;
  /** Stops waiting (the outcome is no longer wanted). */
  cancel(): void;
}

/**
 * One web instance's inbox of chat outcomes: a Redis channel of its own, named in each job it adds
 * (`replyTo`), on which the worker publishes the job's outcome once BullMQ has recorded it. The web
 * thus hears only its own chats, in one message each, instead of every instance reading every event
 * of every chat job.
 *
 * Pub/sub keeps nothing for a subscriber that is away: after a reconnect, and for any wait older
 * than RECHECK_MS, the inbox reads the job itself, so a lost message costs a delay, never an answer.
 */
export interface ChatReplies {
  /** The channel to name in a job as its `replyTo`. */
  readonly channel: string;
  /** Resolves once subscribed: a job added after it cannot finish unheard. */
  waitUntilReady(): Promise<void>;
  /** Waits for the outcome of a job this instance is about to add with `replyTo: channel`. */
  listen(jobId: string, waitMs: number): ChatOutcome;
  /** How many jobs are being waited on. */
  waiting(): number;
  close(): Promise<void>;
}

/** How long a wait goes unheard before the inbox reads its job, and how often after that. */
const RECHECK_MS = 5_000;

type Waiter = { resolve(value: unknown): void; reject(err: Error): void; since: number };

export function createChatReplies(opts: {
  /** A connection of its own: a subscribed connection can do nothing else. */
  subscriber: RedisClient;
  /** The chat queue's key prefix: channels live beside its keys. */
  prefix: string;
  /** Reads a job's outcome from Redis; undefined while it is not finished. */
  outcomeOf(jobId: string): Promise<ChatReply | undefined>;
  logger: Logger;
}): ChatReplies {
  const { subscriber, logger } = opts;
  const channel = `${opts.prefix}:replies:${randomBytes(8).toString("hex")}`;
  const waiters = new Map<string, Set<Waiter>>();

  const deliver = (reply: ChatReply) => {
    const waiting = waiters.get(reply.id);
    if (!waiting) return;
    waiters.delete(reply.id);
    for (const w of waiting) {
      if (reply.ok) w.resolve(reply.value);
      else w.reject(new Error(reply.reason));
    }
  };
  const recheck = async (ids: string[]) => {
    for (const id of ids) {
      const reply = await opts.outcomeOf(id).catch((err: unknown) => {
        logger.warn({ err, jobId: id }, "could not read a chat job's outcome; its wait goes on");
        return undefined;
      });
      if (reply) deliver(reply);
    }
  };

  subscriber.on("message", (from: string, text: string) => {
    if (from !== channel) return;
    try {
      deliver(JSON.parse(text) as ChatReply);
    } catch (err) {
      logger.warn({ err }, "unreadable chat reply ignored");
    }
  });
  const subscribed = subscriber.subscribe(channel).then(() => {
    // ioredis subscribes again by itself after a reconnect; what was published meanwhile is lost.
    subscriber.on("ready", () => void recheck([...waiters.keys()]));
  });
  subscribed.catch(() => {});
  const sweep = setInterval(() => {
    const due = Date.now() - RECHECK_MS;
    void recheck([...waiters].filter(([, ws]) => [...ws].some((w) => w.since <= due)).map(([id]) => id));
  }, RECHECK_MS);
  sweep.unref();

  return {
    channel,
    waitUntilReady: () => subscribed,
    listen(jobId, waitMs) {
      let cancel = () => {};
      const finished = new Promise<unknown>((resolve, reject) => {
        const timer = setTimeout(() => {
          cancel();
          reject(new Error(`no outcome for chat ${jobId} within ${waitMs} ms`));
        }, waitMs);
        const waiter: Waiter = {
          resolve: (value) => {
            clearTimeout(timer);
            resolve(value);
          },
          reject: (err) => {
            clearTimeout(timer);
            reject(err);
          },
          since: Date.now(),
        };
        cancel = () => {
          clearTimeout(timer);
          const waiting = waiters.get(jobId);
          waiting?.delete(waiter);
          if (waiting?.size === 0) waiters.delete(jobId);
        };
        const waiting = waiters.get(jobId) ?? new Set<Waiter>();
        waiters.set(jobId, waiting.add(waiter));
      });
      // The route answers every rejection by reading the job; none may go unhandled meanwhile.
      finished.catch(() => {});
      return { finished, cancel: () => cancel() };
    },
    waiting: () => waiters.size,
    async close() {
      clearInterval(sweep);
      for (const id of [...waiters.keys()]) deliver({ id, ok: false, reason: "the web instance is closing" });
      subscriber.disconnect();
    },
  };
}

/** A chat job's outcome read from Redis: undefined while it is not finished (or never existed). */
export async function jobOutcome(queue: Queue, jobId: string): Promise<ChatReply | undefined> {
  const state = await queue.getJobState(jobId);
  if (state !== "completed" && state !== "failed") return undefined;
  const job = await queue.getJob(jobId);
  if (!job) return undefined;
  return state === "completed"
    ? { id: jobId, ok: true, value: job.returnvalue }
    : { id: jobId, ok: false, reason: job.failedReason };
}

/**
 * Worker side: publishes each chat job's final outcome (completed, or failed for good) to the
 * channel its web instance named, after BullMQ has recorded it — so the answer a client gets is
 * one a rerun of the job would never contradict. A publish that fails is logged; the waiting
 * request then reads the job at its next recheck.
 */
export function replyToWaiters(worker: Worker, redis: RedisClient, logger: Logger): void {
  const send = (job: Job, reply: ChatReply) => {
    const to = (job.data as { replyTo?: unknown }).replyTo;
    if (typeof to !== "string") return;
    redis.publish(to, JSON.stringify(reply)).catch((err: unknown) => {
      logger.warn(
        { err, jobId: job.id },
        "chat reply not published; the waiting request reads the job's outcome instead",
      );
    });
  };
  worker.on("completed", (job, value) => send(job, { id: job.id!, ok: true, value }));
  onFinalFailure(worker, (job, err) => send(job, { id: job.id!, ok: false, reason: err.message }));
}

/**
 * Waits for a job this request did not add (a repeat joining a chat in flight) by reading its
 * state, quickly at first then every half second: such joins are rare, and no instance need hear
 * every chat's outcome for them.
 */
export async function pollUntilFinished(queue: Queue, jobId: string, waitMs: number): Promise<unknown> {
  const deadline = Date.now() + waitMs;
  for (let pause = 25; ; pause = Math.min(pause * 2, 500)) {
    const reply = await jobOutcome(queue, jobId);
    if (reply?.ok) return reply.value;
    if (reply) throw new Error(reply.reason);
    const left = deadline - Date.now();
    if (left <= 0) throw new Error(`no outcome for chat ${jobId} within ${waitMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, Math.min(pause, left)));
  }
}
