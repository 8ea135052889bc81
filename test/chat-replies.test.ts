import { randomBytes } from "node:crypto";
import { once } from "node:events";
import { Queue, UnrecoverableError, Worker } from "bullmq";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  createChatReplies,
  jobOutcome,
  replyToWaiters,
  type ChatReplies,
} from "../src/queues/chat-replies.js";
import { createLogger } from "../src/platform/logger.js";

// A web instance's inbox of chat outcomes against a real Redis and a real BullMQ worker that
// publishes them (replyToWaiters), as the Procfile processes use them.
const prefix = `{test-replies-${randomBytes(4).toString("hex")}}`;
const connection = { host: "127.0.0.1", port: 6379, maxRetriesPerRequest: null };
const logger = createLogger("silent", "test");
let queue: Queue;
let worker: Worker;
let publisher: Redis;
const inboxes: ChatReplies[] = [];

/** An inbox on a subscriber named `name` that reconnects `reconnectMs` after a drop. */
async function inbox(name: string, reconnectMs = 50): Promise<{ replies: ChatReplies; subscriber: Redis }> {
  const subscriber = new Redis({ ...connection, connectionName: name, retryStrategy: () => reconnectMs });
  subscriber.on("error", () => {});
  const replies = createChatReplies({
    subscriber,
    prefix,
    outcomeOf: (jobId) => jobOutcome(queue, jobId),
    logger,
  });
  await replies.waitUntilReady();
  inboxes.push(replies);
  return { replies, subscriber };
}

beforeAll(async () => {
  queue = new Queue("chat", { connection, prefix });
  publisher = new Redis(connection);
  worker = new Worker(
    "chat",
    async (job) => {
      if (job.data.fail) throw new UnrecoverableError("provider said no");
      if (job.data.flaky && job.attemptsMade === 0) throw new Error("try again");
      return { answer: `echo ${job.data.text}` };
    },
    { connection, prefix },
  );
  replyToWaiters(worker, publisher, logger);
  await Promise.all([queue.waitUntilReady(), worker.waitUntilReady()]);
});

afterAll(async () => {
  await Promise.all(inboxes.map((i) => i.close()));
  await worker.close();
  await queue.obliterate({ force: true });
  await queue.close();
  const keys = await publisher.keys(`${prefix}*`);
  if (keys.length) await publisher.del(...keys);
  publisher.disconnect();
});

describe("a web instance's inbox of chat outcomes", () => {
  it("resolves with the job's return value, after a retried attempt, and stops waiting", async () => {
    const { replies } = await inbox("replies-ok");
    const outcome = replies.listen("job-ok", 10_000);
    const flaky = replies.listen("job-flaky", 10_000);
    await queue.add("chat", { text: "hi", replyTo: replies.channel }, { jobId: "job-ok" });
    await queue.add(
      "chat",
      { text: "again", flaky: true, replyTo: replies.channel },
      { jobId: "job-flaky", attempts: 2 },
    );
    await expect(outcome.finished).resolves.toEqual({ answer: "echo hi" });
    // The first attempt's failure is not the job's outcome: the wait goes on to the retry's answer.
    await expect(flaky.finished).resolves.toEqual({ answer: "echo again" });
    expect(replies.waiting()).toBe(0);
  });

  it("rejects with the failure reason when the job fails for good", async () => {
    const { replies } = await inbox("replies-fail");
    const outcome = replies.listen("job-fail", 10_000);
    await queue.add("chat", { fail: true, replyTo: replies.channel }, { jobId: "job-fail" });
    await expect(outcome.finished).rejects.toThrow("provider said no");
    expect(replies.waiting()).toBe(0);
  });

  it("hears only the jobs that name its channel", async () => {
    const a = await inbox("replies-a");
    const b = await inbox("replies-b");
    const heard: string[] = [];
    const onB = b.replies.listen("job-for-a", 10_000);
    onB.finished.then(
      () => heard.push("b"),
      () => {},
    );
    const onA = a.replies.listen("job-for-a", 10_000);
    await queue.add("chat", { text: "a", replyTo: a.replies.channel }, { jobId: "job-for-a" });
    await expect(onA.finished).resolves.toEqual({ answer: "echo a" });
    // B's channel got nothing: its wait is still open until cancelled.
    await publisher.ping();
    expect(heard).toEqual([]);
    expect(b.replies.waiting()).toBe(1);
    onB.cancel();
    expect(b.replies.waiting()).toBe(0);
  });

  it("rejects after the wait when no outcome arrives, and cancel stops waiting", async () => {
    const { replies } = await inbox("replies-wait");
    const slow = replies.listen("job-never-added", 50);
    await expect(slow.finished).rejects.toThrow(/within 50 ms/);
    expect(replies.waiting()).toBe(0);

    const cancelled = replies.listen("job-cancelled", 10_000);
    expect(replies.waiting()).toBe(1);
    cancelled.cancel();
    expect(replies.waiting()).toBe(0);
  });

  it("reads the job after a reconnect, so an outcome published while it was away is not lost", async () => {
    const name = `replies-lost-${randomBytes(3).toString("hex")}`;
    const { replies, subscriber } = await inbox(name, 1_000);
    const outcome = replies.listen("job-lost", 20_000);
    const started = Date.now();
    // Drop the subscriber's connection: it comes back a second later, subscribed again.
    const clients = String(await publisher.client("LIST"));
    const id = /id=(\d+) .*name=(\S+)/g;
    const mine = [...clients.matchAll(id)].find((m) => m[2] === name)![1]!;
    const closed = once(subscriber, "close");
    await publisher.client("KILL", "ID", mine);
    await closed;
    await queue.add("chat", { text: "lost", replyTo: replies.channel }, { jobId: "job-lost" });
    // Finished and published while nobody listened on the channel.
    for (let i = 0; i < 200 && (await queue.getJobState("job-lost")) !== "completed"; i++)
      await new Promise((r) => setTimeout(r, 10));
    expect(await queue.getJobState("job-lost")).toBe("completed");
    expect(subscriber.status).not.toBe("ready");

    await expect(outcome.finished).resolves.toEqual({ answer: "echo lost" });
    // Heard through the reconnect's recheck, well before the 5 s sweep would have read it.
    expect(Date.now() - started).toBeLessThan(4_000);
  });
});
