import type { Section } from "../lib/context.js";
import { ms } from "../lib/context.js";
import { requireAccepted, runLoad } from "../lib/load.js";
import type { Row } from "../lib/table.js";
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

  // A worker drains the accepted events into the ledger; done when the row count stops growing.
  const count = async () =>
    Number((await env.db("usage_events").where({ customer_id: customer.id }).count({ n: "*" }))[0]?.n ?? 0);
  const before = await count();
  await stack.defaultWorker();
  const start = performance.now();
  let rowsNow = before;
  let lastGrowth = start;
  while (performance.now() - lastGrowth < (rowsNow > before ? 3_000 : 20_000)) {
    await new Promise((res) => setTimeout(res, 100));
    const next = await count();
    if (next !== rowsNow) lastGrowth = performance.now();
    rowsNow = next;
  }
  const seconds = (lastGrowth - start) / 1000;
  const drained = rowsNow - before;
  rows.push({
    id: "e2",
    label: "ingested events written to the ledger (one worker)",
    value: drained > 0 ? drained / seconds : null,
    unit: "events/s",
    note: drained > 0 ? undefined : "no ledger rows appeared",
    detail: `${drained} rows in ${seconds.toFixed(1)} s`,
  });
  return rows;
};
