import type { Section } from "../lib/context.js";
import { atLeast, type Row } from "../lib/table.js";
import { createCustomer } from "../../src/billing/customers/customers.js";

/** Hours back the synthetic usage spreads over: one report per customer and hour. */
const HOURS = 4;

/**
 * (h) Stripe's v2 meter event stream (issue 18 part 4): `reportChats` reports' worth of ledger rows
 * (customers × 4 hours, written with generate_series), then one worker with REPORTING_METER_API=v2
 * flushes them at boot into batch jobs of up to 100 reports and sends each batch to the Stripe
 * emulator as one stream request. h1 is the rate at which reports were marked sent (each one
 * accepted by the emulator first), h2 compares the emulator's totals with the ledger's.
 */
export const meterStream: Section = async (ctx) => {
  const { stack, env, options } = ctx;
  await stack.stopDefaultWorker();
  const stripe = await stack.stripeEmulator();
  const customerCount = Math.max(1, Math.ceil(options.reportChats / HOURS));
  const ids: string[] = [];
  for (let i = 0; i < customerCount; i += 100) {
    const chunk = await Promise.all(
      Array.from({ length: Math.min(100, customerCount - i) }, (_, j) =>
        createCustomer(env.db, {
          name: `Stream ${i + j}`,
          planId: "usage",
          stripeCustomerId: stripe.createCustomer({ name: `Stream ${i + j}` }).id,
        }),
      ),
    );
    ids.push(...chunk.map((c) => c.id));
  }
  // Two rows per customer and hour, in the past hours (Stripe takes timestamps up to 35 days back).
  await env.db.raw(
    `INSERT INTO usage_events (request_id, customer_id, model, prompt_tokens, completion_tokens,
       billable_tokens, provider_cost_micros, price_micros, source, plan_id, created_at)
     SELECT 'chat_h_' || c || '_' || h || '_' || k, c, 'gpt-4o-mini', 90, 10, 100 + k, 1, 1, 'provider', 'usage',
            date_trunc('hour', now()) - make_interval(hours => h) + make_interval(mins => 10 * k)
     FROM unnest(?::text[]) c, generate_series(1, ?) h, generate_series(1, 2) k`,
    [ids, HOURS],
  );
  const reports = customerCount * HOURS;
  stripe.resetStats();

  ctx.log(`h. ${reports} reports (${customerCount} customers × ${HOURS} hours) through the v2 stream`);
  const worker = await stack.startWorker("worker-stream", {
    STRIPE_SECRET_KEY: "sk_test_meterline_bench",
    STRIPE_API_BASE: stripe.url,
    REPORTING_METER_API: "v2",
    // More report jobs than the worker's 10 Postgres connections can serve only time out waiting for one.
    STRIPE_REPORT_CONCURRENCY: "100",
    USAGE_FLUSH_INTERVAL_MS: "3600000",
  });
  const deadline = Date.now() + 120_000 + reports * 5;
  for (;;) {
    const [unsent] = await env
      .db("usage_reports")
      .whereIn("customer_id", ids)
      .where("status", "sent")
      .count({ n: "*" });
    if (Number(unsent?.n) >= reports) break;
    if (Date.now() > deadline) throw new Error(`h: reports not all sent; see ${worker.logFile}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  await worker.stop();

  const [span] = await env
    .db("usage_reports")
    .whereIn("customer_id", ids)
    .select(
      env.db.raw(
        `extract(epoch FROM max(sent_at) - min(first_attempted_at))::float8 AS seconds, count(*)::int AS n`,
      ),
    );
  const [ledger] = await env.db("usage_events").whereIn("customer_id", ids).sum({ total: "billable_tokens" });
  const stripeIds = new Set(await env.db("customers").whereIn("id", ids).pluck("stripe_customer_id"));
  const stripeTotal = stripe
    .meterEvents()
    .filter((e) => stripeIds.has(e.customer))
    .reduce((sum, e) => sum + e.value, 0);
  const requests = stripe.calls["POST /v2/billing/meter_event_stream"] ?? 0;
  const seconds = Math.max(Number(span.seconds), 0.001);
  const rows: Row[] = [
    atLeast(
      {
        id: "h1",
        label: "meter events/s through the v2 stream (one worker)",
        value: span.n / seconds,
        unit: "events/s",
        detail: `${span.n} reports sent in ${seconds.toFixed(2)} s (first attempt to last sent), ${requests} stream requests, ${(span.n / Math.max(1, requests)).toFixed(1)} events each`,
      },
      1_000,
    ),
    {
      id: "h2",
      label: "Stripe total − ledger total",
      value: stripeTotal - Number(ledger?.total ?? 0),
      unit: "tokens",
      detail: `Stripe ${stripeTotal}, ledger ${Number(ledger?.total ?? 0)}`,
      target: "0",
      pass: stripeTotal === Number(ledger?.total ?? 0),
    },
  ];
  return rows;
};
