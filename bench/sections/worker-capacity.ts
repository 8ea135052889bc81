import type { Section } from "../lib/context.js";
import { atLeast, atMost } from "../lib/table.js";

/**
 * (d) One worker process, a slow LLM and many chats in flight: the jobs are queued first (addBulk,
 * in the chat job shape), then the worker starts with CHAT_CONCURRENCY = in-flight and drains them.
 * The rate is measured while `inFlight` chats are in flight: from the end of the first wave until
 * the backlog is empty.
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
  // Three phases: ramp-up (the worker fetches jobs and opens connections until `inFlight` are
  // running), sustained (every finished chat is replaced from the backlog, so `inFlight` stay in
  // flight), drain (the backlog is empty and in-flight falls to zero). d1 is the sustained rate,
  // counted from the end of the first wave (`inFlight` chats finished) to the empty backlog; the
  // whole run, ramp-up and drain included, is in its detail.
  type Mark = { at: number; finished: number };
  let firstActive: number | undefined;
  let firstWave: Mark | undefined;
  let backlogEmpty: Mark | undefined;
  let last = performance.now();
  const deadline = Date.now() + 120_000 + options.chats * 10;
  for (;;) {
    const counts = await queue.getJobCounts("waiting", "active", "completed", "failed");
    const at = performance.now();
    const finished = (counts.completed ?? 0) + (counts.failed ?? 0);
    if (firstActive === undefined && (counts.active ?? 0) + finished > 0) firstActive = at;
    if (firstWave === undefined && finished >= options.inFlight) firstWave = { at, finished };
    if (backlogEmpty === undefined && firstActive !== undefined && (counts.waiting ?? 0) === 0)
      backlogEmpty = { at, finished };
    if (finished >= options.chats) {
      last = at;
      if (counts.failed) ctx.log(`d. ${counts.failed} chats failed; see ${worker.logFile}`);
      break;
    }
    if (Date.now() > deadline) throw new Error(`d: only ${finished}/${options.chats} chats finished`);
    await new Promise((r) => setTimeout(r, 20));
  }
  const rssMb = worker.peakRssMb();
  await worker.stop();
  await emulator.setLatency(0);
  const seconds = (last - (firstActive ?? last)) / 1000;
  const whole = `whole run ${options.chats} chats in ${seconds.toFixed(2)} s = ${Math.round(options.chats / seconds)}/s`;
  const window =
    firstWave && backlogEmpty && backlogEmpty.at - firstWave.at >= 500
      ? { from: firstWave, to: backlogEmpty }
      : undefined;
  // Too few chats for a sustained phase of half a second: fall back to the whole run.
  const sustained = window
    ? {
        value: ((window.to.finished - window.from.finished) * 1000) / (window.to.at - window.from.at),
        detail: `${window.to.finished - window.from.finished} chats in ${((window.to.at - window.from.at) / 1000).toFixed(2)} s sustained; ${whole}`,
      }
    : { value: options.chats / seconds, detail: `${whole} (no sustained phase: raise --chats)` };
  const label = `${options.inFlight} chats in flight, LLM ${options.llmLatencyMs} ms`;
  return [
    atLeast(
      {
        id: "d1",
        label: `one worker, ${label}`,
        value: sustained.value,
        unit: "chats/s",
        detail: sustained.detail,
      },
      800,
    ),
    atMost({ id: "d2", label: "that worker's peak RSS (VmHWM)", value: rssMb, unit: "MB" }, 300),
  ];
};
