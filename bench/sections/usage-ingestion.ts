import type { Section } from "../lib/context.js";
import { ms } from "../lib/context.js";
import { requireAccepted, runLoad } from "../lib/load.js";
import type { Row } from "../lib/table.js";
import { Queue } from "bullmq";
import { QUEUE, queuePrefix } from "../../src/queues/queues.js";
import { createApiKey, createCustomer } from "../../src/billing/customers/customers.js";

const BATCH = 100;

/**
 * (e) `POST /v1/usage` (issue 3): batches of 100 events with unique ids, accepted with 202; then a
 * worker drains them into the ledger.
 */
export const usageIngestion: Section = async (ctx) => {
  const { stack, env, options } = ctx;
  const web = await stack.web();
  // Its own customer, so the ledger rows of this row are easy to count.
  const customer = await createCustomer(env.db, { name: "Bench ingestion", planId: "usage" });
  const { key } = await createApiKey(env.db, customer.id);
  const url = `${web.url}/v1/usage`;
  const headers = { "content-type": "application/json", authorization: `Bearer ${key}` };

  await stack.stopDefaultWorker();
  let batch = 0;
  const body = () => {
    const n = batch++;
    const events = Array.from({ length: BATCH }, (_, i) => ({
      id: `evt_bench_${n}_${i}`,
      model: "gpt-4o-mini",
      prompt_tokens: 120,
      completion_tokens: 30,
    }));
    return JSON.stringify({ events });
  };
  ctx.log(`e. usage ingestion, ${BATCH} events per request`);
  const r = await runLoad(
    {
      url,
      method: "POST",
      headers,
      connections: options.connections,
      requests: [{ method: "POST", setupRequest: (req) => ({ ...req, body: body() }) }],
    },
    options.duration,
    options.warmup,
  );
  requireAccepted(r, "POST /v1/usage");
  const rows: Row[] = [
    {
      id: "e1",
      label: `usage ingestion accept, ${BATCH} events per request`,
      value: r.rps * BATCH,
      unit: "events/s",
      detail: `${Math.round(r.rps)} req/s, p50 ${ms(r.p50)}, p99 ${ms(r.p99)}${r.failures ? `, ${r.failures} failed` : ""}`,
    },
  ];

  // A worker drains the accepted events into the ledger. The rate is counted over a window as long
  // as the accept run (ramp-up left out: it starts at the first row), not over the whole backlog of
  // about ten times that; the rest of the backlog is then dropped so the next sections run alone.
  const count = async () =>
    Number((await env.db("usage_events").where({ customer_id: customer.id }).count({ n: "*" }))[0]?.n ?? 0);
  const initial = await count();
  await stack.defaultWorker();
  let before = initial;
  const firstDeadline = performance.now() + 20_000;
  while (before === initial && performance.now() < firstDeadline) {
    await new Promise((res) => setTimeout(res, 50));
    before = await count();
  }
  // Two seconds at least: a smoke run's window must see the group commits that follow the first.
  const window = Math.max(options.duration, 2) * 1000;
  const start = performance.now();
  let rowsNow = before;
  let lastGrowth = start;
  while (performance.now() - start < window && performance.now() - lastGrowth < 3_000 && rowsNow > initial) {
    await new Promise((res) => setTimeout(res, 100));
    const next = await count();
    if (next !== rowsNow) lastGrowth = performance.now();
    rowsNow = next;
  }
  await stack.stopDefaultWorker();
  await dropBacklog(ctx);
  const seconds = (lastGrowth - start) / 1000;
  const drained = rowsNow - before;
  rows.push({
    id: "e2",
    label: "ingested events written to the ledger (one worker)",
    value: drained > 0 && seconds > 0 ? drained / seconds : null,
    unit: "events/s",
    note: drained > 0 && seconds > 0 ? undefined : "no ledger rows appeared",
    detail: `${drained} rows in ${seconds.toFixed(1)} s`,
  });
  return rows;
};

/** Removes the usage jobs the drain window left (their events are never written: the bench ends). */
async function dropBacklog(ctx: Parameters<Section>[0]): Promise<void> {
  const queue = new Queue(QUEUE.usage, {
    connection: ctx.env.redis,
    prefix: queuePrefix(ctx.env.queuePrefix, QUEUE.usage),
  });
  try {
    await queue.obliterate({ force: true });
  } finally {
    await queue.close();
  }
}
