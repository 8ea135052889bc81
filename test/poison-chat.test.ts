import { describe, expect, it } from "vitest";
import { upsertPlan } from "../src/billing/pricing/plans.js";
import { estimatePromptTokens } from "../src/llm/usage.js";
import { useStack, waitFor } from "./helpers/stack.js";

// Workers are separate OS processes here, killed with SIGKILL: a chat that crashes every worker
// that takes it (say, one that runs it out of memory) must not be retried forever.
const stack = useStack({ worker: false, emulator: { latencyMs: 800 } });
const fastStall = { WORKER_LOCK_MS: "1500", WORKER_STALLED_INTERVAL_MS: "1000" };

const messages = [{ role: "user" as const, content: "a request that kills its worker" }];
const MAX_TOKENS = 5;
const perRequest = (await estimatePromptTokens({ messages })) + MAX_TOKENS;

describe("a chat that kills every worker that takes it", () => {
  it("fails for good after its second stall: its reservation comes back, nothing is billed, the poll says failed", async () => {
    // A hard limit of one request: the chat in flight holds all of it until it settles.
    const planId = `poison_${Math.random().toString(36).slice(2, 8)}`;
    await upsertPlan(stack.db, {
      id: planId,
      name: "One request",
      kind: "usage",
      overagePer1kMicros: 2_000,
      hardLimitTokens: perRequest,
    });
    const { customerId, key } = await stack.customer({ planId });
    const body = { model: "gpt-4o-mini", messages, max_tokens: MAX_TOKENS };

    // Asynchronous: no web instance waits on it, so only the worker that fails it can give the
    // reservation back.
    const accepted = await stack.chat(key, body, { headers: { prefer: "respond-async" } });
    expect(accepted.status).toBe(202);
    const crash = async (calls: number) => {
      const { child, exited } = stack.spawnWorkerProcess(fastStall);
      await waitFor(() => stack.emulator.calls >= calls, {
        timeoutMs: 30_000,
        what: `worker ${calls} to call the LLM`,
      });
      child.kill("SIGKILL");
      await exited;
    };
    await crash(1);
    // Meanwhile the whole allowance is held: another request is refused.
    expect((await stack.chat(key, body)).status).toBe(402);
    await crash(2);

    // The next worker finds it stalled a second time (BullMQ's maxStalledCount is 1) and fails it
    // without calling the LLM again.
    await stack.startWorker(fastStall);
    const polled = await waitFor(
      async () => {
        const res = await fetch(`${stack.url}/v1/chats/${accepted.requestId}`, {
          headers: { authorization: `Bearer ${key}` },
        });
        const state = (await res.json()) as { status: string; error?: { type: string; message: string } };
        return state.status === "failed" ? state : undefined;
      },
      { timeoutMs: 30_000, what: "the poison chat failed" },
    );
    // A generic server error: BullMQ's "job stalled more than allowable limit" is for operators.
    expect(polled.error?.type).toBe("server_error");
    expect(polled.error?.message).not.toContain("stalled");
    expect(stack.emulator.calls).toBe(2);
    expect(await stack.db("usage_events").where({ customer_id: customerId })).toHaveLength(0);
    // Its reservation was given back: the allowance serves one request again.
    await waitFor(async () => (await stack.chat(key, body)).status === 200, {
      what: "the poison chat's reservation released",
    });
  });
});
