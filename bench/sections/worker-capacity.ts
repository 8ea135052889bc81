import type { Section } from "../lib/context.js";
import { atLeast, atMost } from "../lib/table.js";

/**
 * (d) One worker process, a slow LLM and many chats in flight: the jobs are queued first (addBulk,
 * in the chat job shape), then the worker starts with CHAT_CONCURRENCY = in-flight and drains them.
 */
export const workerCapacity: Section = async (ctx) => {
  const { stack, options } = ctx;
  await stack.stopDefaultWorker();
  const emulator = await stack.emulator();
  await emulator.setLatency(options.llmLatencyMs);
  const queue = stack.chatQueue();
  await queue.obliterate({ force: true });
  await stack.addChats(options.chats, { tag: "d" });

  ctx.log(`d. one worker, ${options.inFlight} in flight, LLM latency ${options.llmLatencyMs} ms`);
  const worker = await stack.startWorker("worker-capacity", { CHAT_CONCURRENCY: String(options.inFlight) });
  let first: number | undefined;
  let last = performance.now();
  const deadline = Date.now() + 120_000 + options.chats * 10;
  for (;;) {
    const counts = await queue.getJobCounts("active", "completed", "failed");
    const finished = (counts.completed ?? 0) + (counts.failed ?? 0);
    if (first === undefined && (counts.active ?? 0) + finished > 0) first = performance.now();
    if (finished >= options.chats) {
      last = performance.now();
      if (counts.failed) ctx.log(`d. ${counts.failed} chats failed; see ${worker.logFile}`);
      break;
    }
    if (Date.now() > deadline) throw new Error(`d: only ${finished}/${options.chats} chats finished`);
    await new Promise((r) => setTimeout(r, 20));
  }
  const rssMb = worker.peakRssMb();
  await worker.stop();
  await emulator.setLatency(0);
  const seconds = (last - (first ?? last)) / 1000;
  const label = `${options.inFlight} chats in flight, LLM ${options.llmLatencyMs} ms`;
  return [
    atLeast(
      {
        id: "d1",
        label: `one worker, ${label}`,
        value: options.chats / seconds,
        unit: "chats/s",
        detail: `${options.chats} chats in ${seconds.toFixed(2)} s`,
      },
      800,
    ),
    atMost({ id: "d2", label: "that worker's peak RSS (VmHWM)", value: rssMb, unit: "MB" }, 300),
  ];
};
