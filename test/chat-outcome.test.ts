import { randomBytes } from "node:crypto";
import type { EventEmitter } from "node:events";
import { Queue, QueueEvents, UnrecoverableError, Worker } from "bullmq";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { listenForChatOutcome } from "../src/api/chat/outcome.js";

const prefix = `{test-outcome-${randomBytes(4).toString("hex")}}`;
const connection = { host: "127.0.0.1", port: 6379, maxRetriesPerRequest: null };
let queue: Queue;
let events: QueueEvents;
let worker: Worker;

beforeAll(async () => {
  queue = new Queue("chat", { connection, prefix });
  events = new QueueEvents("chat", { connection, prefix });
  worker = new Worker(
    "chat",
    async (job) => {
      if (job.data.fail) throw new UnrecoverableError("provider said no");
      return { answer: `echo ${job.data.text}` };
    },
    { connection, prefix },
  );
  await Promise.all([queue.waitUntilReady(), events.waitUntilReady(), worker.waitUntilReady()]);
});

afterAll(async () => {
  await worker.close();
  await events.close();
  await queue.obliterate({ force: true });
  await queue.close();
  const redis = new Redis(connection);
  const keys = await redis.keys(`${prefix}*`);
  if (keys.length) await redis.del(...keys);
  redis.disconnect();
});

const listeners = (jobId: string) =>
  (events as unknown as EventEmitter).listenerCount(`completed:${jobId}`) +
  (events as unknown as EventEmitter).listenerCount(`failed:${jobId}`);

describe("waiting for a chat job this request adds", () => {
  it("resolves with the job's return value and stops listening", async () => {
    const outcome = await listenForChatOutcome(events, "job-ok", 10_000);
    await queue.add("chat", { text: "hi" }, { jobId: "job-ok" });
    await expect(outcome.finished).resolves.toEqual({ answer: "echo hi" });
    expect(listeners("job-ok")).toBe(0);
  });

  it("rejects with the failure reason when the job fails for good", async () => {
    const outcome = await listenForChatOutcome(events, "job-fail", 10_000);
    await queue.add("chat", { fail: true }, { jobId: "job-fail" });
    await expect(outcome.finished).rejects.toThrow("provider said no");
    expect(listeners("job-fail")).toBe(0);
  });

  it("rejects after the wait when no outcome arrives, and cancel removes its listeners", async () => {
    const slow = await listenForChatOutcome(events, "job-never-added", 50);
    await expect(slow.finished).rejects.toThrow(/within 50 ms/);
    expect(listeners("job-never-added")).toBe(0);

    const cancelled = await listenForChatOutcome(events, "job-cancelled", 10_000);
    expect(listeners("job-cancelled")).toBe(2);
    cancelled.cancel();
    expect(listeners("job-cancelled")).toBe(0);
  });
});
