import { describe, expect, it } from "vitest";
import type OpenAI from "openai";
import { useStack } from "./helpers/stack.js";

// Every answer is 5,000 tokens unless the request caps it: a request without max_tokens reserves
// QUOTA_COMPLETION_ESTIMATE_TOKENS (1,024), so only the cap at the provider keeps the limit.
const stack = useStack({ emulator: { answerTokens: 5_000 } });

const LIMIT = 100_000; // the seeded free plan's hard limit
const billedTokens = async (customerId: string) => {
  const [row] = await stack.db("usage_events").where({ customer_id: customerId }).sum("billable_tokens as t");
  return Number(row?.t ?? 0);
};
const ask = (content: string) => ({ model: "gpt-4o-mini", messages: [{ role: "user" as const, content }] });

describe("a hard limit", () => {
  it("holds at the provider: 120 concurrent chats without max_tokens never bill past it", async () => {
    const { customerId, openai } = await stack.customer({ planId: "free" });
    // About 96 reservations of ~1,040 tokens fit in 100,000: the limit binds.
    const results = await Promise.allSettled(
      Array.from({ length: 120 }, (_, i) => openai.chat.completions.create(ask(`question ${i}`))),
    );

    const answered = results.flatMap((r) => (r.status === "fulfilled" ? [r.value] : []));
    const refused = results.filter((r) => r.status === "rejected");
    expect(answered.length).toBeGreaterThan(30);
    expect(refused.length).toBeGreaterThan(0);
    expect(refused.every((r) => (r.reason as { status?: number }).status === 402)).toBe(true);
    expect(answered.every((c) => c.choices[0]!.finish_reason === "length")).toBe(true);
    expect(answered.every((c) => c.usage!.completion_tokens <= 1_024)).toBe(true);
    const billed = await billedTokens(customerId);
    expect(billed).toBeLessThanOrEqual(LIMIT);
    expect(billed).toBeGreaterThan(LIMIT - 2 * 1_100);
  });

  it("keeps a client's own smaller max_tokens", async () => {
    const { openai } = await stack.customer({ planId: "free" });
    const completion = await openai.chat.completions.create({ ...ask("short"), max_tokens: 10 });
    expect(completion.usage!.completion_tokens).toBe(10);
  });

  it("stops a stream at its reservation with finish reason length", async () => {
    const { customerId, openai } = await stack.customer({ planId: "free" });
    const stream = await openai.chat.completions.create({
      ...ask("stream it"),
      stream: true,
      stream_options: { include_usage: true },
    });
    let finish: string | null = null;
    let usage: OpenAI.CompletionUsage | undefined;
    for await (const chunk of stream) {
      finish = chunk.choices[0]?.finish_reason ?? finish;
      usage = chunk.usage ?? usage;
    }
    expect(finish).toBe("length");
    expect(usage!.completion_tokens).toBe(1_024);
    expect(await billedTokens(customerId)).toBe(usage!.total_tokens);
  });

  it("leaves plans without a hard limit uncapped", async () => {
    const { openai } = await stack.customer({ planId: "usage" });
    const completion = await openai.chat.completions.create(ask("long answer"));
    expect(completion.usage!.completion_tokens).toBe(5_000);
    expect(completion.choices[0]!.finish_reason).toBe("stop");
  });
});
