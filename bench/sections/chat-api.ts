import type { Section } from "../lib/context.js";
import { ms } from "../lib/context.js";
import { runLoad, runPaced } from "../lib/load.js";
import { CHAT_BODY } from "../lib/stack.js";
import { atLeastShare, atMost, type Row } from "../lib/table.js";
import { httpRow } from "./baselines.js";
import { chatProcesses } from "../lib/chat-processes.js";
import { cpuSince, perRequestSplit } from "../lib/cpu-split.js";
import { roundTripRows } from "./round-trips.js";

const chatHeaders = (key: string, extra: Record<string, string> = {}) => ({
  "content-type": "application/json",
  authorization: `Bearer ${key}`,
  ...extra,
});

/** (a) The API alone accepting async chats (`Prefer: respond-async`): web process only, no worker. */
export const asyncAccept: Section = async (ctx) => {
  const { stack, env, options } = ctx;
  await stack.stopDefaultWorker();
  const web = await stack.web();
  ctx.log("a. async accept");
  const r = await runLoad(
    {
      url: `${web.url}/v1/chat/completions`,
      method: "POST",
      headers: chatHeaders(env.customer.key, { prefer: "respond-async" }),
      body: CHAT_BODY,
      connections: 50,
    },
    options.duration,
    options.warmup,
  );
  // Nothing consumes these jobs; remove them so later rows measure only their own chats.
  await stack.chatQueue().obliterate({ force: true });
  const row = httpRow("a1", "async chat accept, 50 connections (web only)", r);
  return [
    atLeastShare(row, ctx.row("B2"), 0.6),
    atMost(
      { id: "a2", label: "async chat accept p99", value: r.p99, unit: "ms", detail: `p50 ${ms(r.p50)}` },
      25,
    ),
  ];
};

/**
 * (b) End-to-end synchronous chats through web, worker and a 0 ms emulator; the CPU they cost, summed
 * over every process a chat runs through (b3); their Redis and Postgres round trips (b4, b5).
 */
export const syncThroughput: Section = async (ctx) => {
  const { stack, env, options } = ctx;
  const web = await stack.web();
  await (await stack.emulator()).setLatency(0);
  await stack.defaultWorker();
  ctx.log("b. sync chats end to end");
  const spec = {
    url: `${web.url}/v1/chat/completions`,
    method: "POST",
    headers: chatHeaders(env.customer.key),
    body: CHAT_BODY,
    connections: options.connections,
  };
  // The warmup apart, so the CPU is counted over the measured seconds alone.
  if (options.warmup > 0) await runLoad(spec, options.warmup, 0);
  const spent = cpuSince(await chatProcesses(ctx, ["web", "worker"]));
  const r = await runLoad(spec, options.duration, 0);
  const cpu = spent();
  const total = [...cpu.values()].reduce((a, b) => a + b, 0);
  const row = httpRow("b1", `sync chats end to end, ${options.connections} connections`, r);
  return [
    { ...atLeastShare({ ...row, unit: "chats/s" }, ctx.row("B4"), 0.5) },
    { id: "b2", label: "sync chat p99", value: r.p99, unit: "ms", detail: `p50 ${ms(r.p50)}` },
    {
      id: "b3",
      label: "CPU per sync chat, all processes",
      value: r.completed > 0 ? (total * 1000) / r.completed : null,
      unit: "ms",
      note: r.completed > 0 ? undefined : "no chat completed",
      detail: `during b1; ${perRequestSplit(cpu, r.completed)} ms${env.redisPid === undefined ? "; shared Redis not counted" : ""}`,
    },
    ...(await roundTripRows(ctx)),
  ];
};

/** (c) What meterline adds to one chat over calling the emulator directly, at moderate load. */
export const addedLatency: Section = async (ctx) => {
  const { stack, env, options } = ctx;
  const web = await stack.web();
  const emulator = await stack.emulator();
  await emulator.setLatency(0);
  await stack.defaultWorker();
  const pace = {
    connections: 10,
    rate: options.mode === "smoke" ? 50 : 200,
    seconds: options.duration,
    warmup: options.warmup,
  };
  ctx.log(`c. added latency at ${pace.rate} req/s (direct, then through meterline)`);
  const direct = await runPaced(
    { url: `${emulator.url}/chat/completions`, headers: chatHeaders("sk-bench"), body: CHAT_BODY },
    pace,
  );
  const through = await runPaced(
    { url: `${web.url}/v1/chat/completions`, headers: chatHeaders(env.customer.key), body: CHAT_BODY },
    pace,
  );
  // The same chats of a customer whose usage prepaid credits pay (the ledger write locks and draws them).
  const paid = await runPaced(
    { url: `${web.url}/v1/chat/completions`, headers: chatHeaders(env.creditCustomer.key), body: CHAT_BODY },
    pace,
  );
  const failed = direct.failures + through.failures;
  const detail = (q: "p50" | "p99") =>
    `meterline ${ms(through[q])} − direct ${ms(direct[q])}${failed ? `, ${failed} failed` : ""}`;
  const rows: Row[] = [
    atMost(
      {
        id: "c1",
        label: `added latency p50, ${pace.rate} req/s`,
        value: through.p50 - direct.p50,
        unit: "ms",
        detail: detail("p50"),
      },
      5,
    ),
    atMost(
      {
        id: "c2",
        label: `added latency p99, ${pace.rate} req/s`,
        value: through.p99 - direct.p99,
        unit: "ms",
        detail: detail("p99"),
      },
      20,
    ),
    {
      id: "c3",
      label: `added latency p50, ${pace.rate} req/s, a customer paying from credits`,
      value: paid.p50 - direct.p50,
      unit: "ms",
      detail: `meterline ${ms(paid.p50)} − direct ${ms(direct.p50)}; p99 ${ms(paid.p99)} − ${ms(direct.p99)}${
        paid.failures ? `, ${paid.failures} failed` : ""
      }`,
    },
  ];
  return rows;
};
