import { describe, expect, it } from "vitest";
import { UnrecoverableError, type Job, type Queue } from "bullmq";
import { PermanentError, RetryableError } from "../src/errors.js";
import { wrapProcessor } from "../src/queues/processor.js";
import { QUEUE } from "../src/queues/queues.js";
import { useReportingStack } from "./helpers/reporting.js";
import { waitFor } from "./helpers/stack.js";

// A payload no retry can fix: every queue fails it for good on its first attempt, whatever attempts
// the job has left, and the queues with dead letters record it. (`usage-flush` and `maintenance`
// take no payload.)
const { stack } = useReportingStack();

const MALFORMED = [
  { queue: "chat", data: { requestId: 42, request: "hello" }, deadLetter: false },
  { queue: "usage", data: { customerId: "cus_1", events: "none" }, deadLetter: true },
  { queue: "stripeReport", data: { reportId: "one" }, deadLetter: true },
  // A batch is one stream request: at most 100 events.
  {
    queue: "stripeReport",
    data: { batchId: 1, reportIds: Array.from({ length: 101 }, (_, i) => i + 1) },
    deadLetter: true,
  },
  { queue: "reconcile", data: { day: "yesterday" }, deadLetter: false },
  { queue: "stripeEvent", data: { kind: "refund" }, deadLetter: true },
] as const;

describe("malformed job payloads", () => {
  const cases = MALFORMED.map((m, i) => ({ ...m, i }));
  it.each(cases)("$queue ($i): one attempt, failed for good", async ({ queue: key, data, deadLetter, i }) => {
    const queue = stack.web.queues[key] as Queue;
    const jobId = `malformed-${key}-${i}`;
    await queue.add("malformed", data, { jobId, attempts: 3, backoff: { type: "fixed", delay: 10 } });

    const failed = await waitFor(
      async () => {
        // The state first: a job read before it failed would show its earlier attempts.
        return (await queue.getJobState(jobId)) === "failed" ? queue.getJob(jobId) : undefined;
      },
      { what: `the malformed ${key} job to fail` },
    );
    expect(failed.attemptsMade).toBe(1);
    expect(failed.failedReason).toMatch(/invalid .* payload/);

    const letters = () => stack.db("dead_letters").where({ queue: queue.name, job_id: jobId });
    if (deadLetter) await waitFor(async () => (await letters()).length === 1, { what: "its dead letter" });
    else expect(await letters()).toEqual([]);
  });
});

describe("the processor wrapper", () => {
  const job = { data: { day: "2026-01-31" } } as Job;

  it("fails a PermanentError for good, keeping it as the cause, and passes the parsed payload", async () => {
    const refusal = new PermanentError("no price for model x", 500, "server_error");
    const seen: unknown[] = [];
    const processor = wrapProcessor(QUEUE.reconcile, async (data) => {
      seen.push(data);
      throw refusal;
    });
    const thrown = await processor(job).catch((err: unknown) => err);
    expect(thrown).toBeInstanceOf(UnrecoverableError);
    expect(thrown).toMatchObject({ message: refusal.message, cause: refusal });
    expect(seen).toEqual([{ day: "2026-01-31" }]);
  });

  it("leaves every other error to BullMQ's retries", async () => {
    const transient = new RetryableError("Stripe answered 503");
    const processor = wrapProcessor(QUEUE.reconcile, async () => {
      throw transient;
    });
    await expect(processor(job)).rejects.toBe(transient);
  });
});
