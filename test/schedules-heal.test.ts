import { Redis } from "ioredis";
import { beforeAll, describe, expect, it } from "vitest";
import { createLogger } from "../src/platform/logger.js";
import { SCHEDULES } from "../src/queues/schedules.js";
import { useStack, waitFor } from "./helpers/stack.js";
import { addUsage, ledgerTotal, linkedCustomer } from "./helpers/reporting.js";

const FLUSH_MS = 400;
// FLUSHALL only ever runs against this private Redis, never the shared one.
const stack = useStack({
  redis: "private",
  stripe: "reporting",
  env: { USAGE_FLUSH_INTERVAL_MS: String(FLUSH_MS) },
  worker: false,
});
const lines: Array<Record<string, unknown>> = [];
const sink = { write: (line: string) => void lines.push(JSON.parse(line)) };

beforeAll(async () => {
  // Two worker processes-equivalent, logging warnings into memory.
  for (const name of ["worker-a", "worker-b"]) {
    await stack.startWorker({}, { name, logger: createLogger("warn", name, sink) });
  }
});

const pendingFlushJobs = async () =>
  (await stack.web.queues.usageFlush.getJobs(["delayed", "waiting", "prioritized"])).filter(
    (j) => j.repeatJobKey === "usage-flush",
  );

describe("job schedules after Redis lost its data", () => {
  it("are re-created by the running workers within one interval: the flush reports new usage without a restart", async () => {
    const queues = stack.web.queues;
    await waitFor(async () => (await queues.usageFlush.getCompletedCount()) >= 1, {
      what: "a first scheduled flush",
    });

    const client = new Redis(stack.redisServer.url);
    await client.flushall();
    client.disconnect();
    expect(await queues.usageFlush.getJobScheduler("usage-flush")).toBeUndefined();

    const c = await linkedCustomer(stack.db, stack.stripe);
    await addUsage(stack.db, c.customerId, 3, 40);
    const lostAt = Date.now();
    const total = await ledgerTotal(stack.db, c.customerId);
    await waitFor(async () => stack.stripe.totalFor(c.stripeCustomerId) === total, {
      timeoutMs: 3 * FLUSH_MS + 2_000,
      what: "the usage reported by a re-created flush schedule",
    });
    const healedMs = Date.now() - lostAt;
    expect(stack.stripe.totalFor(c.stripeCustomerId)).toBe(await ledgerTotal(stack.db, c.customerId));

    // Every schedule is back, once, and the two workers did not stack up flush runs.
    for (const s of SCHEDULES) {
      expect(await queues[s.queue].getJobScheduler(s.id), s.id).toMatchObject({ key: s.id });
    }
    expect(await queues.usageFlush.getJobSchedulersCount()).toBe(2);
    expect((await pendingFlushJobs()).length).toBeLessThanOrEqual(1);
    const healed = lines.filter((l) => l.msg?.toString().startsWith("job schedule was missing"));
    expect(healed.map((l) => l.schedule)).toEqual(expect.arrayContaining(SCHEDULES.map((s) => s.id)));
    console.log(
      `schedules re-created and usage reported ${healedMs} ms after FLUSHALL (flush every ${FLUSH_MS} ms)`,
    );
  });

  it("checks without writing while the schedules exist: the next run stays where it was", async () => {
    const before = await stack.web.queues.reconcile.getJobScheduler("reconcile");
    const warned = lines.length;
    // Several check intervals pass: the 6-hour reconcile schedule's next run must not move.
    await waitFor(async () => (await stack.web.queues.usageFlush.getCompletedCount()) >= 5, {
      what: "a few more flushes",
    });
    const after = await stack.web.queues.reconcile.getJobScheduler("reconcile");
    expect(after?.next).toBe(before?.next);
    expect(lines.length).toBe(warned);
  });
});
