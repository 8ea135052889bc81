import type { Section } from "../lib/context.js";
import type { Child } from "../lib/children.js";
import { cpuSeconds, pidsNamed } from "../lib/cpu-split.js";
import type { Row } from "../lib/table.js";

/** The LLM latency for this row (issue 18 part 2). */
const LLM_LATENCY_MS = 200;
const WORKER_COUNTS = [1, 2, 4] as const;

/** CPU seconds of these processes, summed; a process gone counts nothing. */
const cpuOf = (pids: number[]) => pids.reduce((sum, pid) => sum + (cpuSeconds(pid) ?? 0), 0);

/**
 * (i) 1, 2 and 4 worker processes on the same chat queue, LLM latency 200 ms, each worker at
 * CHAT_CONCURRENCY = --in-flight so the LLM never limits. The queue is paused while the workers boot
 * and the chats are added, so every worker starts on the same backlog. The rate is counted from
 * 10% to 90% of the chats finished (ramp-up and drain left out); CPU per chat is read from /proc
 * over the whole run, for the workers alone and for workers + emulator + Redis + Postgres.
 */
export const workerScaling: Section = async (ctx) => {
  const { stack, options } = ctx;
  await stack.stopDefaultWorker();
  const emulator = await stack.emulator();
  await emulator.setLatency(LLM_LATENCY_MS);
  const queue = stack.chatQueue();
  const results: Array<{ workers: number; rate: number; workerMs: number; allMs: number; detail: string }> =
    [];
  try {
    for (const workers of WORKER_COUNTS) {
      results.push(await runWith(workers));
    }
  } finally {
    await queue.resume();
    await emulator.setLatency(0);
  }

  async function runWith(workers: number) {
    await queue.obliterate({ force: true });
    await queue.pause();
    const started: Child[] = [];
    try {
      for (let i = 0; i < workers; i++)
        started.push(
          await stack.startWorker(`worker-scale-${workers}-${i}`, {
            CHAT_CONCURRENCY: String(options.inFlight),
          }),
        );
      await stack.addChats(options.chats, { tag: `i${workers}x` });
      ctx.log(`i. ${workers} worker(s), ${options.chats} chats, LLM ${LLM_LATENCY_MS} ms`);
      const others = [
        ...stack.children
          .running()
          .filter((c) => c.name === "openai-emulator")
          .map((c) => c.pid),
        ...pidsNamed(["redis-server", "postgres"]).map((p) => p.pid),
      ];
      const workerPids = started.map((w) => w.pid);
      const cpu0 = { workers: cpuOf(workerPids), others: cpuOf(others) };
      const t0 = performance.now();
      await queue.resume();
      const marks = await finishMarks(options.chats);
      const cpu1 = { workers: cpuOf(workerPids), others: cpuOf(others) };
      const whole = (performance.now() - t0) / 1000;
      const sustained = marks.p90 && marks.p10 ? marks.p90 : undefined;
      const rate =
        sustained && marks.p10 && sustained.at - marks.p10.at > 0
          ? ((sustained.finished - marks.p10.finished) * 1000) / (sustained.at - marks.p10.at)
          : options.chats / whole;
      const workerMs = ((cpu1.workers - cpu0.workers) * 1000) / options.chats;
      const allMs = workerMs + ((cpu1.others - cpu0.others) * 1000) / options.chats;
      return {
        workers,
        rate,
        workerMs,
        allMs,
        detail: `workers ${workerMs.toFixed(2)} ms CPU/chat, with emulator+Redis+Postgres ${allMs.toFixed(2)} ms; whole run ${options.chats} chats in ${whole.toFixed(2)} s`,
      };
    } finally {
      for (const w of started) await w.stop();
    }
  }

  /** Polls the queue until `total` chats finished, noting when 10% and 90% had. */
  async function finishMarks(total: number) {
    type Mark = { at: number; finished: number };
    let p10: Mark | undefined;
    let p90: Mark | undefined;
    const deadline = Date.now() + 120_000 + total * 10;
    for (;;) {
      const counts = await queue.getJobCounts("completed", "failed");
      const finished = (counts.completed ?? 0) + (counts.failed ?? 0);
      const at = performance.now();
      if (!p10 && finished >= total * 0.1) p10 = { at, finished };
      if (!p90 && finished >= total * 0.9) p90 = { at, finished };
      if (finished >= total) {
        if (counts.failed) ctx.log(`i. ${counts.failed} chats failed`);
        return { p10, p90 };
      }
      if (Date.now() > deadline) throw new Error(`i: only ${finished}/${total} chats finished`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  const [one, two] = results;
  const rows: Row[] = results.map((r, i) => ({
    id: `i${i + 1}`,
    label: `${r.workers} worker process${r.workers > 1 ? "es" : ""}, LLM ${LLM_LATENCY_MS} ms, ${options.inFlight} in flight each`,
    value: r.rate,
    unit: "chats/s",
    detail: r.detail,
  }));
  rows.push({
    id: "i4",
    label: "throughput 2 workers / 1 worker",
    value: one && two ? two.rate / one.rate : null,
    unit: "×",
    detail: results.map((r) => `${r.workers}: ${r.allMs.toFixed(2)} ms CPU/chat`).join(", "),
  });
  return rows;
};
