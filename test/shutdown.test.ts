import { describe, expect, it } from "vitest";
import { ask, useStack, waitFor } from "./helpers/stack.js";

const stack = useStack({ worker: false, emulator: { latencyMs: 2_500 } });

async function enqueue20(key: string): Promise<string[]> {
  const ids = await Promise.all(
    Array.from({ length: 20 }, async (_, i) => {
      const res = await stack.chat(key, ask(`slow job ${i}`), { headers: { prefer: "respond-async" } });
      expect(res.status).toBe(202);
      return res.requestId!;
    }),
  );
  return ids;
}

const rowsFor = (customerId: string) => stack.db("usage_events").where({ customer_id: customerId });

describe("SIGTERM to a worker with 20 slow jobs active", () => {
  it("lets them finish before it exits when they finish within the deadline", async () => {
    const { customerId, key } = await stack.customer();
    const { child, exited } = stack.spawnWorkerProcess({ SHUTDOWN_TIMEOUT_MS: "20000" });
    const before = stack.emulator.calls;
    const ids = await enqueue20(key);
    await waitFor(() => stack.emulator.calls - before >= 20, { timeoutMs: 20_000, what: "20 active jobs" });
    child.kill("SIGTERM");

    expect(await exited).toBe(0);
    const rows = await rowsFor(customerId);
    expect(rows).toHaveLength(20);
    expect(new Set(rows.map((r) => r.request_id))).toEqual(new Set(ids));
    expect(stack.emulator.calls - before).toBe(20);
  });

  it("hands the unfinished ones back at the deadline; a second worker completes them, billed once each", async () => {
    const { customerId, key } = await stack.customer();
    const { child, exited } = stack.spawnWorkerProcess({ SHUTDOWN_TIMEOUT_MS: "1000" });
    const before = stack.emulator.calls;
    const ids = await enqueue20(key);
    await waitFor(() => stack.emulator.calls - before >= 20, { timeoutMs: 20_000, what: "20 active jobs" });
    child.kill("SIGTERM");

    // Exits cleanly at the deadline, long before the 2.5 s answers would have come.
    expect(await exited).toBe(0);
    expect(await rowsFor(customerId)).toHaveLength(0);
    const waiting = await stack.web.queues.chat.getJobCounts("wait", "active");
    expect(waiting).toMatchObject({ wait: 20, active: 0 });

    await stack.startWorker();
    await waitFor(async () => (await rowsFor(customerId)).length >= 20, {
      timeoutMs: 20_000,
      what: "20 usage rows",
    });
    const rows = await rowsFor(customerId);
    expect(rows).toHaveLength(20);
    expect(new Set(rows.map((r) => r.request_id))).toEqual(new Set(ids));
    for (const id of ids) {
      const job = (await stack.web.queues.chat.getJob(id))!;
      expect(await job.getState()).toBe("completed");
      expect(job.attemptsMade).toBe(1);
    }
  });
});
