import { randomBytes } from "node:crypto";
import { Queue, QueueEvents, UnrecoverableError, Worker } from "bullmq";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { attachDeadLetters, listDeadLetters } from "../src/queues/dead-letters.js";
import { redriveDeadLetter } from "../src/queues/redrive.js";
import { createLogger } from "../src/platform/logger.js";
import { createWorkerRedis } from "../src/platform/redis.js";
import { useStack, waitFor } from "./helpers/stack.js";

// The stack's database and nothing else of it: the queue under test is this file's own.
const stack = useStack({ worker: false });
const prefix = `{t${randomBytes(4).toString("hex")}-dlq}`;
const connection = createWorkerRedis("redis://127.0.0.1:6379");
let queue: Queue;
let events: QueueEvents;
let worker: Worker;
let fixed = false;
let applied = 0;

beforeAll(async () => {
  queue = new Queue("flaky", { connection, prefix });
  events = new QueueEvents("flaky", { connection: createWorkerRedis("redis://127.0.0.1:6379"), prefix });
  worker = new Worker(
    "flaky",
    async (job) => {
      if (job.data.permanent && !fixed) throw new UnrecoverableError("bad payload");
      if (!fixed) throw new Error("handler broken");
      applied += 1;
      return "ok";
    },
    { connection: createWorkerRedis("redis://127.0.0.1:6379"), prefix },
  );
  attachDeadLetters(worker, stack.db, createLogger("silent", "test"));
  await Promise.all([events.waitUntilReady(), worker.waitUntilReady()]);
});
afterAll(async () => {
  await worker?.close();
  await events?.close();
  // The shared Redis keeps nothing of this file's queue.
  await queue?.obliterate({ force: true });
  await queue?.close();
  connection.disconnect();
});

const byQueue = (name: string) => (name === "flaky" ? queue : undefined);

describe("dead letters", () => {
  it("records a job whose retries ran out and one failed permanently, keeps them in the failed set, and redrives each exactly once", async () => {
    fixed = false;
    const retried = await queue.add(
      "apply",
      { n: 1 },
      { jobId: "job-retries", attempts: 2, backoff: { type: "fixed", delay: 10 } },
    );
    const permanent = await queue.add("apply", { permanent: true }, { jobId: "job-permanent", attempts: 5 });
    await expect(retried.waitUntilFinished(events, 10_000)).rejects.toThrow("handler broken");
    await expect(permanent.waitUntilFinished(events, 10_000)).rejects.toThrow("bad payload");

    const letters = await waitFor(async () => {
      const rows = await listDeadLetters(stack.db, { queue: "flaky" });
      return rows.length === 2 ? rows : undefined;
    });
    expect(letters.map((l) => [l.job_id, l.attempts, l.reason]).sort()).toEqual([
      ["job-permanent", 1, "bad payload"],
      ["job-retries", 2, "handler broken"],
    ]);
    expect(await queue.getFailedCount()).toBe(2);

    fixed = true;
    for (const letter of letters) {
      expect(await redriveDeadLetter(stack.db, byQueue, letter.id)).toBe("retried");
      // A second redrive while the first is pending or done does no harm.
      expect(["already-pending", "resolved"]).toContain(
        await redriveDeadLetter(stack.db, byQueue, letter.id),
      );
    }
    await waitFor(async () => (await listDeadLetters(stack.db, { queue: "flaky" })).length === 0, {
      what: "dead letters to resolve",
    });
    expect(applied).toBe(2);
    expect(await redriveDeadLetter(stack.db, byQueue, letters[0]!.id)).toBe("resolved");
    expect(applied).toBe(2);
  });

  it("re-adds a dead letter whose job BullMQ no longer holds", async () => {
    fixed = false;
    const job = await queue.add("apply", { n: 2 }, { jobId: "job-removed", attempts: 1 });
    await expect(job.waitUntilFinished(events, 10_000)).rejects.toThrow();
    const [letter] = await waitFor(async () => {
      const rows = await listDeadLetters(stack.db, { queue: "flaky" });
      return rows.length ? rows : undefined;
    });
    await job.remove();
    fixed = true;
    const before = applied;
    expect(await redriveDeadLetter(stack.db, byQueue, letter!.id)).toBe("re-added");
    await waitFor(() => applied === before + 1, { what: "the re-added job to run" });
    await waitFor(async () => (await listDeadLetters(stack.db, { queue: "flaky" })).length === 0, {
      what: "the dead letter to resolve",
    });
  });
});
