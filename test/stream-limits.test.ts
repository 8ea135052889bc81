import { Socket } from "node:net";
import { describe, expect, it } from "vitest";
import { ask, startStack, useStack, waitFor, type Stack } from "./helpers/stack.js";

// Slow chunks keep each stream open long enough to count what it holds.
const stack = useStack({ emulator: { chunkDelayMs: 100, answerTokens: 40 } });

/** Starts a streamed chat and resolves once its first chunk arrived, with a way to hang up. */
async function openStream(s: Stack, key: string, content: string) {
  const abort = new AbortController();
  const res = await s.chatStream(key, ask(content), { signal: abort.signal });
  if (res.status !== 200) return { status: res.status, error: (await res.json()) as ErrorBody, close() {} };
  const reader = res.body!.getReader();
  const { value } = await reader.read();
  expect(new TextDecoder().decode(value)).toMatch(/^data: /);
  return { status: 200, error: undefined, close: () => abort.abort() };
}
type ErrorBody = { error: { message: string; type: string; code: string; param: string | null } };

/** This process's open TCP connections to Redis (web, worker and test clients alike). */
function redisSockets(): number {
  const handles = (process as unknown as { _getActiveHandles(): unknown[] })._getActiveHandles();
  return handles.filter((h) => h instanceof Socket && h.remotePort === 6379 && !h.destroyed).length;
}

const chatJobs = async (s: Stack) => {
  const counts = await s.web.queues.chat.getJobCounts();
  return Object.values(counts).reduce((sum, n) => sum + n, 0);
};

describe("open streams", () => {
  it("30 concurrent streams share the web process's Redis connections", async () => {
    const { key } = await stack.customer();
    // One stream first, so connections made once per process (the reader's) are in the baseline.
    const warm = await openStream(stack, key, "warm up");
    warm.close();
    const before = redisSockets();
    const streams = await Promise.all(
      Array.from({ length: 30 }, (_, i) => openStream(stack, key, `stream ${i}`)),
    );
    expect(streams.map((s) => s.error?.error.message ?? s.status)).toEqual(Array(30).fill(200));
    const during = redisSockets();
    for (const s of streams) s.close();
    expect(during - before).toBeLessThanOrEqual(1);
  });

  it("refuses streams beyond the per-customer and per-process caps with 429, before any job", async () => {
    const capped = await startStack({
      databaseUrl: stack.config.databaseUrl!,
      env: { STREAMS_MAX_PER_CUSTOMER: "2", STREAMS_MAX_PER_PROCESS: "3" },
      emulator: { chunkDelayMs: 100, answerTokens: 40 },
    });
    try {
      const a = await capped.customer();
      const b = await capped.customer();
      const c = await capped.customer();
      const open = [await openStream(capped, a.key, "a1"), await openStream(capped, a.key, "a2")];
      const jobs = await chatJobs(capped);

      const third = await openStream(capped, a.key, "a3");
      expect(third.status).toBe(429);
      expect(third.error!.error).toMatchObject({ type: "rate_limit_error", code: "too_many_streams" });
      expect(third.error!.error.message).toMatch(/2 streaming requests open, the limit per customer/);
      // Another customer still streams, until the process itself is full.
      open.push(await openStream(capped, b.key, "b1"));
      expect(open.map((s) => s.status)).toEqual([200, 200, 200]);
      const full = await openStream(capped, c.key, "c1");
      expect(full.status).toBe(429);
      expect(full.error!.error).toMatchObject({ type: "rate_limit_error", code: "too_many_streams" });
      expect(full.error!.error.message).toMatch(/3 streams open, its limit/);
      expect(await chatJobs(capped)).toBe(jobs + 1);

      // A stream that ends gives its slot back.
      open[0]!.close();
      await waitFor(async () => {
        const next = await openStream(capped, c.key, "c2");
        next.close();
        return next.status === 200;
      });
      // Non-streamed chats are not counted.
      const plain = await capped.chat(a.key, ask("not streamed"));
      expect(plain.status).toBe(200);
      for (const s of open) s.close();
    } finally {
      await capped.close();
    }
  });

  it("counts a dead web process's stream slots only until their lease ends", async () => {
    const { customerId, key } = await stack.customer();
    const slots = `{${stack.config.queuePrefix}-chat}:streams:${customerId}`;
    const members = (n: number, score: number, name: string) =>
      Array.from({ length: n }, (_, i) => [score, `${name}-${i}`]).flat();
    // 49 live slots of another process and 50 whose lease ended: one slot of the 50 is left.
    await stack.web.redis.zadd(slots, ...members(49, Date.now() + 60_000, "live"));
    await stack.web.redis.zadd(slots, ...members(50, Date.now() - 1, "ended"));
    const last = await openStream(stack, key, "the 50th");
    expect(last.status).toBe(200);
    const over = await openStream(stack, key, "the 51st");
    expect(over.status).toBe(429);
    expect(over.error!.error.message).toMatch(/50 streaming requests open, the limit per customer/);
    last.close();
  });

  it("refuses a chat whose job would exceed CHAT_JOB_MAX_BYTES with 413, enqueueing nothing", async () => {
    const { key, customerId } = await stack.customer();
    const jobs = await chatJobs(stack);
    const huge = "word ".repeat(60_000); // 300 KB: under BODY_LIMIT (1 MB), over the 256 KB job limit
    const res = await stack.chat(key, ask(huge), { headers: { "idempotency-key": "big-1" } });
    expect(res.status).toBe(413);
    const error = res.body.error!;
    expect(error).toMatchObject({ type: "invalid_request_error", code: "request_too_large" });
    expect(error.message).toMatch(/above the largest accepted \(262144 bytes\)/);
    expect(await chatJobs(stack)).toBe(jobs);
    // Refused before the Idempotency-Key was claimed: nothing to find on a retry with a shorter body.
    expect(await stack.db("chat_requests").where({ customer_id: customerId })).toEqual([]);
  });
});
