import type { Knex } from "knex";
import type { Section } from "../lib/context.js";
import { ms } from "../lib/context.js";
import { percentile } from "../lib/load.js";
import { atMost, type Row } from "../lib/table.js";
import { createApiKey, createCustomer } from "../../src/billing/customers/customers.js";
import { ensurePartitions } from "../../src/billing/ledger/partitions.js";
import { recordUsageRows, type UsageRow } from "../../src/billing/ledger/ledger.js";
import { SUMMED } from "../../src/billing/ledger/hourly-usage.js";
import { flushUsage } from "../../src/billing/reporting/usage-flush.js";
import { loadConfig } from "../../src/config.js";
import { createQueues } from "../../src/queues/queues.js";
import { createLogger } from "../../src/platform/logger.js";
import { createMetrics } from "../../src/platform/metrics.js";

const MODELS = ["gpt-4o-mini", "gpt-4o", "o4-mini"];
/** Rows per INSERT: one statement per month, cut so none holds more than this. */
const CHUNK = 2_500_000;
const TARGET_MS = 50;
const LINKED = 20;
const FLUSH_ROWS = 100;

type Db = Knex;

/** The ledger's secondary indexes and foreign keys, dropped for the load and made again after it. */
async function dropForLoad(db: Db): Promise<string[]> {
  const { rows: indexes } = await db.raw<{ rows: Array<{ name: string; def: string }> }>(
    `SELECT i.relname AS name, pg_get_indexdef(i.oid) AS def FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
     WHERE x.indrelid = 'usage_events'::regclass`,
  );
  const { rows: keys } = await db.raw<{ rows: Array<{ name: string; def: string }> }>(
    `SELECT conname AS name, pg_get_constraintdef(oid) AS def FROM pg_constraint
     WHERE conrelid = 'usage_events'::regclass AND contype = 'f'`,
  );
  for (const k of keys) await db.raw(`ALTER TABLE usage_events DROP CONSTRAINT ${k.name}`);
  for (const i of indexes) await db.raw(`DROP INDEX ${i.name}`);
  return [
    // ON ONLY builds the parent's index alone; CREATE INDEX on the parent builds every partition's.
    ...indexes.map((i) => i.def.replace(" ON ONLY ", " ON ")),
    ...keys.map((k) => `ALTER TABLE usage_events ADD CONSTRAINT ${k.name} ${k.def}`),
  ];
}

const monthStart = (at: Date, plus = 0) =>
  new Date(Date.UTC(at.getUTCFullYear(), at.getUTCMonth() + plus, 1));

/**
 * Loads `rows` ledger rows with generate_series, a statement per month (or per CHUNK): `customers`
 * customers with a power-law share each (customer ⌊C·u³⌋ for a uniform u: the first ones are heavy,
 * most are light), three models, spread evenly over `months` months up to now, and in the same
 * statements their hourly rollup and period totals, as the ledger's writer keeps them. The rows
 * point at one "history" report, so the flush measured after is of fresh rows only.
 */
async function loadLedger(ctx: Parameters<Section>[0], rows: number, ids: string[], months: number) {
  const { db } = ctx.env;
  const now = new Date();
  const first = monthStart(now, -(months - 1));
  await ensurePartitions(db, { from: first, now });
  const [report] = await db("usage_reports")
    .insert({
      customer_id: ids[0],
      event_name: "history",
      value: 0,
      window_start: first,
      window_end: now,
      event_at: first,
      identifier: `bench-history-${Date.now()}`,
      status: "sent",
    })
    .returning("id");
  const restore = await dropForLoad(db);
  const summed = SUMMED.join(", ");
  const perMonth = Math.ceil(rows / months);
  let loaded = 0;
  for (let m = 0; m < months && loaded < rows; m++) {
    const start = monthStart(first, m);
    const end = new Date(Math.min(monthStart(first, m + 1).getTime(), now.getTime()));
    const monthRows = Math.min(perMonth, rows - loaded);
    for (let done = 0; done < monthRows; done += CHUNK) {
      const from = loaded + done;
      const to = from + Math.min(CHUNK, monthRows - done);
      await db.raw(
        `WITH ins AS (
           INSERT INTO usage_events (request_id, customer_id, model, prompt_tokens, cached_tokens, completion_tokens,
             billable_tokens, provider_cost_micros, price_micros, charge_micros, source, plan_id, created_at, report_id)
           SELECT 'k_' || g, (:ids::text[])[1 + floor(:c * random() ^ 3)::int], (:models::text[])[1 + g % 3],
                  p, p / 4, c, p + c, (p + c) / 8, (p + c) / 2, (p + c) / 2, 'provider', 'usage',
                  :start::timestamptz + random() * (:end::timestamptz - :start::timestamptz), :report
           FROM (SELECT g, 100 + (random() * 900)::int AS p, 10 + (random() * 290)::int AS c
                 FROM generate_series(:from::bigint, :to::bigint - 1) g) s
           RETURNING customer_id, model, created_at, ${summed}
         ),
         hourly AS (
           INSERT INTO usage_hourly AS h (customer_id, hour, model, requests, ${summed})
           SELECT customer_id, date_trunc('hour', created_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC', model, count(*),
                  ${SUMMED.map((col) => `sum(${col})`).join(", ")}
           FROM ins GROUP BY 1, 2, 3
           ON CONFLICT (customer_id, hour, model) DO UPDATE SET requests = h.requests + excluded.requests,
             ${SUMMED.map((col) => `${col} = h.${col} + excluded.${col}`).join(", ")}
         )
         INSERT INTO usage_period_totals AS t (customer_id, period_start, period_end, requests, billable_tokens)
         SELECT customer_id, :monthStart::timestamptz, :monthEnd::timestamptz, count(*), sum(billable_tokens)
         FROM ins GROUP BY 1
         ON CONFLICT (customer_id, period_start) DO UPDATE
           SET requests = t.requests + excluded.requests, billable_tokens = t.billable_tokens + excluded.billable_tokens`,
        {
          ids,
          c: ids.length,
          models: MODELS,
          start,
          end,
          from,
          to,
          report: report.id,
          monthStart: start,
          monthEnd: monthStart(first, m + 1),
        },
      );
      ctx.log(`k. ${to.toLocaleString("en-US")} of ${rows.toLocaleString("en-US")} ledger rows loaded`);
    }
    loaded += monthRows;
  }
  ctx.log("k. indexes and foreign keys made again, then ANALYZE");
  await db.transaction(async (trx) => {
    await trx.raw("SET LOCAL maintenance_work_mem = '256MB'");
    for (const statement of restore) await trx.raw(statement);
  });
  // The rollup must hold every loaded row once, or k1 would measure reads of a wrong ledger.
  const [counted] = await db("usage_hourly").whereIn("customer_id", ids).sum({ n: "requests" });
  const n: unknown = counted?.n;
  if (Number(n) !== rows) throw new Error(`k: the rollup counts ${String(n)} requests, not ${rows}`);
  await db.raw("ANALYZE usage_events");
  await db.raw("ANALYZE usage_hourly");
  await db.raw("ANALYZE usage_period_totals");
  // The load leaves gigabytes of dirty pages; written out now, they do not land in the timings.
  await db.raw("CHECKPOINT");
}

/** One flush's deps, in this process: the claim and its transaction, then the jobs' enqueue. */
function flushDeps(ctx: Parameters<Section>[0]) {
  const config = loadConfig(ctx.env.meterlineEnv({ STRIPE_SECRET_KEY: "sk_test_meterline_bench" }));
  const queues = createQueues(ctx.env.redis, config);
  const metrics = createMetrics(() => queues.all);
  return {
    deps: { db: ctx.env.db, config, logger: createLogger("warn", "bench-k"), queues, metrics },
    close: () => queues.close(),
  };
}

/**
 * (k) A ledger of years (issue 18 part 3): `--ledger-rows` rows loaded before the processes start,
 * then GET /v1/usage of random customers (k1) and one flush of fresh rows (k2), each p50/p99.
 */
export const ledgerAtScale: Section = async (ctx) => {
  const { env, options } = ctx;
  const rows = options.ledgerRows;
  const customerCount = options.mode === "smoke" ? 50 : 3_000;
  const months = options.mode === "smoke" ? 2 : 12;
  const samples = options.mode === "smoke" ? 20 : 300;
  // 100: a p99 of 30 samples is their maximum, one stray checkpoint away from any figure.
  const flushes = options.mode === "smoke" ? 5 : 100;
  const started = performance.now();
  const ids: string[] = [];
  for (let i = 0; i < customerCount; i += 100) {
    const chunk = await Promise.all(
      Array.from({ length: Math.min(100, customerCount - i) }, (_, j) =>
        createCustomer(env.db, { name: `Ledger ${i + j}`, planId: "usage" }),
      ),
    );
    ids.push(...chunk.map((c) => c.id));
  }
  await loadLedger(ctx, rows, ids, months);
  const loadSeconds = (performance.now() - started) / 1000;
  ctx.log(`k. ${rows.toLocaleString("en-US")} rows loaded in ${loadSeconds.toFixed(0)} s`);

  const web = await ctx.stack.web();
  // Random customers, heavy and light alike (the first ids hold most rows).
  const sampled = Array.from(
    { length: samples },
    (_, i) => ids[i < 10 ? i : Math.floor(Math.random() * ids.length)]!,
  );
  const keys = new Map<string, string>();
  for (const id of new Set(sampled)) keys.set(id, (await createApiKey(env.db, id)).key);
  const getUsage = async (id: string) => {
    const t = performance.now();
    const res = await fetch(`${web.url}/v1/usage`, { headers: { authorization: `Bearer ${keys.get(id)}` } });
    if (!res.ok) throw new Error(`GET /v1/usage: HTTP ${res.status}`);
    await res.arrayBuffer();
    return performance.now() - t;
  };
  for (const id of sampled.slice(0, 20)) await getUsage(id); // warm: connections, plans, JIT
  const usage: number[] = [];
  for (const id of sampled) usage.push(await getUsage(id));
  usage.sort((a, b) => a - b);

  // Fresh rows of linked customers, then one flush of them, timed: the claim, the reports and the
  // enqueue of their jobs (no worker reports them to Stripe here).
  const linked = await Promise.all(
    Array.from({ length: LINKED }, (_, i) =>
      createCustomer(env.db, { name: `Linked ${i}`, planId: "usage", stripeCustomerId: `cus_bench_k_${i}` }),
    ),
  );
  const { deps, close } = flushDeps(ctx);
  const flush: number[] = [];
  try {
    for (let f = -3; f < flushes; f++) {
      const fresh: UsageRow[] = Array.from({ length: FLUSH_ROWS }, (_, i) => ({
        requestId: `k_flush_${f}_${i}`,
        customerId: linked[i % LINKED]!.id,
        model: MODELS[i % MODELS.length]!,
        promptTokens: 100,
        cachedTokens: 0,
        cacheWriteTokens: 0,
        completionTokens: 50,
        reasoningTokens: 0,
        billableTokens: 150,
        providerCostMicros: 20,
        priceMicros: 75,
        source: "provider",
        planId: "usage",
        pricing: { includedTokens: 0, overagePer1kMicros: 2_000 },
      }));
      await recordUsageRows(env.db, fresh);
      const t = performance.now();
      const result = await flushUsage(deps);
      const took = performance.now() - t;
      // The first three warm the pool and the plans (and claim what earlier sections left unreported).
      if (f < 0) continue;
      if (result.rows !== FLUSH_ROWS)
        throw new Error(`k: a flush claimed ${result.rows} rows, not ${FLUSH_ROWS}`);
      flush.push(took);
    }
  } finally {
    await close();
  }
  flush.sort((a, b) => a - b);

  const loadedIn = `${rows.toLocaleString("en-US")} rows, ${customerCount.toLocaleString("en-US")} customers, ${months} months, loaded in ${loadSeconds.toFixed(0)} s`;
  const row = (id: string, label: string, times: number[], what: string): Row =>
    atMost(
      {
        id,
        label,
        value: percentile(times, 0.99),
        unit: "ms",
        detail: `p50 ${ms(percentile(times, 0.5))}, p99 ${ms(percentile(times, 0.99))}, ${times.length} ${what}; ${loadedIn}`,
      },
      TARGET_MS,
    );
  return [
    row("k1", "GET /v1/usage p99, large ledger", usage, "requests of random customers"),
    row("k2", "one flush p99, large ledger", flush, `flushes of ${FLUSH_ROWS} fresh rows`),
  ];
};
