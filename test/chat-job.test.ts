import { describe, expect, it } from "vitest";
import { pollUntilFinished } from "../src/queues/chat-replies.js";
import { useStack, waitFor } from "./helpers/stack.js";
import type { ChatJobData } from "../src/queues/queues.js";
import { chatCompletion } from "./helpers/completions.js";

const stack = useStack();

describe("the chat job", () => {
  it("bills from the answer kept on the job instead of calling the LLM again", async () => {
    const { customerId } = await stack.customer();
    const before = stack.emulator.calls;
    const completion = chatCompletion({
      id: "chatcmpl-kept",
      content: "kept",
      promptTokens: 11,
      completionTokens: 7,
    });
    const data: ChatJobData = {
      requestId: "chat_kept_answer",
      customerId,
      planId: "usage",
      request: { model: "gpt-4o-mini", messages: [{ role: "user", content: "hi" }] },
      bodyHash: "x",
      receivedAt: new Date().toISOString(),
      completion,
    };
    const job = await stack.web.queues.chat.add("chat", data, { jobId: data.requestId });
    const result = (await pollUntilFinished(stack.web.queues.chat, job.id!, 10_000)) as { id: string };

    expect(result.id).toBe("chatcmpl-kept");
    expect(stack.emulator.calls).toBe(before);
    const rows = await stack.db("usage_events").where({ request_id: "chat_kept_answer" });
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ prompt_tokens: 11, completion_tokens: 7, billable_tokens: 18 });
  });

  it("writes no second row when the same request id is processed again", async () => {
    const { customerId } = await stack.customer();
    const data: ChatJobData = {
      requestId: "chat_processed_twice",
      customerId,
      planId: "usage",
      request: { model: "gpt-4o-mini", messages: [{ role: "user", content: "twice" }] },
      bodyHash: "x",
      receivedAt: new Date().toISOString(),
    };
    const first = await stack.web.queues.chat.add("chat", data, { jobId: data.requestId });
    await pollUntilFinished(stack.web.queues.chat, first!.id!, 10_000);
    await first.remove();
    // Once BullMQ forgets the job id, Postgres is the guard.
    const again = await stack.web.queues.chat.add("chat", data, { jobId: data.requestId });
    await pollUntilFinished(stack.web.queues.chat, again!.id!, 10_000);
    await waitFor(async () => (await again.getState()) === "completed");
    expect(await stack.db("usage_events").where({ request_id: data.requestId })).toHaveLength(1);
  });
});
