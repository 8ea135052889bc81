import { describe, expect, it } from "vitest";
import OpenAI from "openai";
import { countTokens } from "gpt-tokenizer";
import { useStack, waitFor } from "./helpers/stack.js";

const stack = useStack({ worker: false, emulator: { chunkDelayMs: 150 } });

const fastStall = { WORKER_LOCK_MS: "1500", WORKER_STALLED_INTERVAL_MS: "1000" };

describe("a worker killed mid-stream", () => {
  it("ends the client's stream with a stream_interrupted error and bills the relayed text once", async () => {
    const { customerId, openai } = await stack.customer();
    const { child, exited } = stack.spawnWorkerProcess(fastStall);

    const content = Array.from({ length: 40 }, (_, i) => `word${i}`).join(" ");
    const stream = await openai.chat.completions.create({
      model: "gpt-4o-mini",
      messages: [{ role: "user", content }],
      stream: true,
    });
    let text = "";
    let seen = 0;
    let rescuing: Promise<unknown> | undefined;
    const error = await (async () => {
      for await (const chunk of stream) {
        text += chunk.choices[0]?.delta?.content ?? "";
        if (chunk.choices[0]?.delta?.content && ++seen === 3) {
          child.kill("SIGKILL");
          rescuing = exited.then(() => stack.startWorker(fastStall));
        }
      }
    })().catch((err: unknown) => err);
    await rescuing;

    expect(error).toBeInstanceOf(OpenAI.APIError);
    expect((error as InstanceType<typeof OpenAI.APIError>).code).toBe("stream_interrupted");
    expect(seen).toBeGreaterThanOrEqual(3);
    const rows = await waitFor(async () => {
      const found = await stack.db("usage_events").where({ customer_id: customerId });
      return found.length > 0 ? found : undefined;
    });
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ source: "estimated", completion_tokens: countTokens(text) });
    // The retry billed what had been relayed instead of asking the provider again.
    expect(stack.emulator.calls).toBe(1);
  });
});
