import { describe, expect, it } from "vitest";
import { pollUntilFinished } from "../src/queues/chat-replies.js";
import { ask, useStack, waitFor } from "./helpers/stack.js";

const stack = useStack({ worker: false, emulator: { latencyMs: 800 } });

const fastStall = { WORKER_LOCK_MS: "1500", WORKER_STALLED_INTERVAL_MS: "1000" };

describe("a worker that dies mid-job", () => {
  it("leaves a stalled job that another worker finishes, with exactly one usage row", async () => {
    const { customerId, key } = await stack.customer();
    const { child, exited } = stack.spawnWorkerProcess(fastStall);

    const res = await stack.chat(key, ask("crash test"), { headers: { prefer: "respond-async" } });
    expect(res.status).toBe(202);
    const requestId = res.requestId!;

    // The child has the job and is waiting on the LLM: kill it without any chance to clean up.
    await waitFor(() => stack.emulator.calls >= 1, {
      timeoutMs: 20_000,
      what: "the child worker to call the LLM",
    });
    child.kill("SIGKILL");
    await exited;

    const rescuer = await stack.startWorker(fastStall);
    const job = await stack.web.queues.chat.getJob(requestId);
    await pollUntilFinished(stack.web.queues.chat, job!.id!, 20_000);

    expect(await rescuer.deps.db("usage_events").where({ customer_id: customerId })).toHaveLength(1);
    expect((await stack.web.queues.chat.getJob(requestId))!.returnvalue.object).toBe("chat.completion");
  });
});
