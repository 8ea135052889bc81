import { monitorEventLoopDelay } from "node:perf_hooks";
import { beforeAll, describe, expect, it } from "vitest";
import { estimatePromptTokens, estimateUsage } from "../src/llm/usage.js";
import { ask, useStack } from "./helpers/stack.js";

const MAX_LOOP_DELAY_MS = 50;

/**
 * The longest the event loop waited while `work` ran, in ms (a 10 ms timer probes it): the best of
 * up to three runs. A shared machine deschedules the process now and then — under a load of 7 on 2
 * cores, a loop doing nothing but 5 ms slices showed up to ~70 ms — while a loop that the work
 * itself blocks exceeds the limit on every run.
 */
async function maxLoopDelay(work: () => Promise<unknown>): Promise<number> {
  let best = Infinity;
  for (let run = 0; run < 3 && best >= MAX_LOOP_DELAY_MS; run++) {
    const histogram = monitorEventLoopDelay({ resolution: 10 });
    histogram.enable();
    try {
      await work();
    } finally {
      histogram.disable();
    }
    best = Math.min(best, histogram.max / 1e6);
  }
  return best;
}

const random = (length: number, pick: () => string) => Array.from({ length }, pick).join("");
const oneOf = (chars: string) => {
  const all = Array.from(chars);
  return () => all[Math.floor(Math.random() * all.length)]!;
};
const codePoint = (from: number, span: number) => () =>
  String.fromCodePoint(from + Math.floor(Math.random() * span));

// Mixed scripts, emoji and punctuation without spaces: the slowest text per character found here.
const mixedMegabyte = random(400_000, () => {
  const r = Math.random();
  if (r < 0.3) return codePoint(0x1f600, 80)();
  if (r < 0.6) return codePoint(0x4e00, 20_000)();
  if (r < 0.8) return codePoint(0x400, 200)();
  return oneOf("abcdefghij!?.,;:+/=")();
});

beforeAll(async () => {
  // A process loads the tokenizer once (the web and worker do it at boot); that is not a request.
  await estimatePromptTokens({ messages: [{ role: "user", content: "warm up" }] });
});

describe("estimating tokens never holds the event loop", () => {
  it("a 300,000-character word: under 50 ms of loop delay, and still an upper bound", async () => {
    let tokens = 0;
    const delay = await maxLoopDelay(async () => {
      tokens = await estimatePromptTokens({ messages: [{ role: "user", content: "a".repeat(300_000) }] });
    });
    expect(delay).toBeLessThan(MAX_LOOP_DELAY_MS);
    // o200k spells eight a's as one token: 37,500 is the exact count, plus framing.
    expect(tokens).toBeGreaterThanOrEqual(37_500);
    expect(tokens).toBeLessThan(37_500 * 1.05);
  });

  it("a megabyte of mixed scripts and emoji, as prompt and as completion", async () => {
    expect(Buffer.byteLength(mixedMegabyte)).toBeGreaterThan(1_000_000);
    let usage = { promptTokens: 0, completionTokens: 0 };
    const delay = await maxLoopDelay(async () => {
      usage = await estimateUsage({ messages: [{ role: "user", content: mixedMegabyte }] }, mixedMegabyte);
    });
    expect(delay).toBeLessThan(MAX_LOOP_DELAY_MS);
    expect(usage.promptTokens).toBeGreaterThan(350_000);
    expect(usage.completionTokens).toBeGreaterThan(350_000);
  }, 60_000);

  it("4,096 small messages of distinct words", async () => {
    const messages = Array.from({ length: 4096 }, () => ({
      role: "user",
      content: random(200, oneOf("qwertyuiopasdfghjklzxcvbnm")),
      name: random(20, oneOf("abcdef")),
    }));
    let tokens = 0;
    const delay = await maxLoopDelay(async () => {
      tokens = await estimatePromptTokens({ messages });
    });
    expect(delay).toBeLessThan(MAX_LOOP_DELAY_MS);
    expect(tokens).toBeGreaterThan(4096 * 20);
  }, 60_000);

  it("deeply repetitive text, with and without spaces", async () => {
    const delay = await maxLoopDelay(async () => {
      await estimatePromptTokens({
        messages: [
          { role: "system", content: "abc".repeat(150_000) },
          { role: "user", content: "the same sentence again. ".repeat(40_000) },
          { role: "user", content: "🙂".repeat(150_000) },
        ],
      });
    });
    expect(delay).toBeLessThan(MAX_LOOP_DELAY_MS);
  }, 60_000);
});

describe("a hostile chat on a hard-limit plan", () => {
  // Jobs as large as the body limit: the chat must reach the estimate, not the 413 of a smaller cap.
  const stack = useStack({ env: { CHAT_JOB_MAX_BYTES: "1048576" } });

  it("is refused (402) after its estimate while /healthz keeps answering within 200 ms", async () => {
    const { key } = await stack.customer({ planId: "free" });
    let done = false;
    const chat = stack
      .chat(
        key,
        // More than the free plan's 100,000 tokens: the web process alone estimates and refuses,
        // so the worker and the in-process provider emulator take no part in what is measured.
        ask("a".repeat(300_000), { max_tokens: 100_000 }),
      )
      .finally(() => (done = true));
    const latencies: number[] = [];
    while (!done) {
      const started = performance.now();
      const health = await fetch(`${stack.url}/healthz`);
      expect(health.status).toBe(200);
      latencies.push(performance.now() - started);
    }
    const answer = await chat;
    expect(answer.status).toBe(402);
    expect(answer.text).toContain("needs an estimated");
    expect(latencies.length).toBeGreaterThan(0);
    expect(Math.max(...latencies)).toBeLessThan(200);
  }, 60_000);
});
