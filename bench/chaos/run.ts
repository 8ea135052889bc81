// `npm run chaos [-- --chats N | --quick]`: meterline's Procfile processes (one web, two workers,
// compiled as in production) on a private Postgres and a private redis-server with AOF, the OpenAI
// emulator and a Stripe emulator answering 30% 5xx, 10% 429 and dropping answers; a retrying
// client sends N chats while workers are kill -9ed, Redis is kill -9ed and restarted from its AOF
// and Postgres is restarted. Then everything drains and the ledger is audited against the client
// and Stripe. Exits 1 if any usage was lost or billed twice.
import { randomBytes } from "node:crypto";
import { mkdirSync, rmSync } from "node:fs";
import path from "node:path";
import { parseArgs } from "node:util";
import { createApiKey, createCustomer } from "../../src/billing/customers/customers.js";
import { grantCredits } from "../../src/billing/credits/grants.js";
import { seedDefaultPlans } from "../../src/billing/pricing/plans.js";
import { createDb } from "../../src/platform/db.js";
import { startOpenAIEmulator } from "../../src/local/openai-emulator.js";
import { startStripeEmulator } from "../../src/local/stripe-emulator.js";
import { migrateLatest } from "../../src/platform/migrate.js";
import { compileForBench, createChildren, freePort, waitForHttp } from "../lib/children.js";
import { audit, formatFigures, waitForDrain } from "./audit.js";
import { runClient } from "./client.js";
import { runFaults, type FaultTargets } from "./faults.js";
import { startPrivateServices } from "./services.js";

const { values: args } = parseArgs({
  options: {
    chats: { type: "string" },
    quick: { type: "boolean", default: false },
    concurrency: { type: "string" },
    keep: { type: "boolean", default: false },
  },
});
const quick = args.quick ?? false;
const chats = Number(args.chats ?? (quick ? 200 : 2_000));
const concurrency = Number(args.concurrency ?? 32);
if (!Number.isInteger(chats) || chats < 1) throw new Error(`--chats must be a positive integer`);
const started = Date.now();
const log = (msg: string) => console.log(`[${((Date.now() - started) / 1000).toFixed(1)}s] ${msg}`);

const STRIPE_FAULTS = { rate500: 0.3, rate429: 0.1, rateDrop: 0.02, rateDropAfter: 0.05 };

log("compiling src/ and jobs/ (tsconfig.bench.json)");
const compiledRoot = compileForBench();
const { dir, postgres, redis } = await startPrivateServices(log);
const logDir = path.join(dir, "logs");
mkdirSync(logDir);
const children = createChildren(logDir, undefined, compiledRoot);
// Whatever ends this run (a crash included), meterline's processes must not outlive it.
process.once("exit", () => children.running().forEach((c) => process.kill(c.pid, "SIGKILL")));
const llm = await startOpenAIEmulator({ latencyMs: quick ? 300 : 100 });
const stripe = await startStripeEmulator();

const db = createDb(postgres.url, { max: 3 });
await migrateLatest(db);
await seedDefaultPlans(db);
const customers = await Promise.all(
  Array.from({ length: 3 }, async (_, i) => {
    const stripeCustomerId = stripe.createCustomer({ name: `Chaos ${i}` }).id;
    const customer = await createCustomer(db, { name: `Chaos ${i}`, stripeCustomerId });
    // The last customer has prepaid credits for about a third of its usage: its rows are paid from
    // them in full, then in part, then not at all (the invoice takes the rest), all through faults.
    if (i === 2)
      await grantCredits(db, { customerId: customer.id, amountMicros: chats * 10, source: "manual" });
    return { stripeCustomerId, key: (await createApiKey(db, customer.id)).key };
  }),
);

const env: Record<string, string> = {
  NODE_ENV: "production",
  LOG_LEVEL: "info",
  DATABASE_URL: postgres.url,
  REDIS_URL: redis.url,
  QUEUE_PREFIX: "chaos",
  OPENAI_API_KEY: "sk-chaos",
  OPENAI_BASE_URL: llm.url,
  STRIPE_SECRET_KEY: "sk_test_chaos",
  STRIPE_API_BASE: stripe.url,
  STRIPE_WEBHOOK_SECRET: "whsec_chaos",
  ADMIN_TOKEN: randomBytes(16).toString("hex"),
  RATE_LIMIT_PER_MINUTE: "0",
  // Short waits and locks so that a run of minutes meets every recovery path (202 → poll, stalled
  // jobs taken over, lost report jobs swept back) instead of waiting out production's timeouts.
  CHAT_WAIT_MS: "10000",
  CHAT_BACKOFF_MS: "200",
  WORKER_LOCK_MS: "5000",
  WORKER_STALLED_INTERVAL_MS: "5000",
  USAGE_FLUSH_INTERVAL_MS: "1000",
  USAGE_SWEEP_INTERVAL_MS: "5000",
  STRIPE_TIMEOUT_MS: "5000",
  STRIPE_REPORT_BACKOFF_MS: "200",
  STRIPE_REPORT_BACKOFF_MAX_MS: "5000",
  STRIPE_RATE_LIMIT_MS: "200",
  SHUTDOWN_TIMEOUT_MS: "5000",
};
let incarnation = 0;
const startWorker = async (slot: number) => {
  const child = children.start(`worker${slot + 1}.${++incarnation}`, "jobs/worker.ts", env);
  await child.waitForLog(/worker started/, 60_000);
  return child;
};
const webPort = await freePort();
const web = children.start("web", "src/server.ts", { ...env, PORT: String(webPort) });
const url = `http://127.0.0.1:${webPort}`;
await waitForHttp(`${url}/healthz`, web, 60_000);
const targets: FaultTargets = {
  workers: [await startWorker(0), await startWorker(1)],
  startWorker,
  redis,
  postgres,
  log,
};
log(`stack up: web ${url}, 2 workers, logs in ${logDir}`);

stripe.setFaults(STRIPE_FAULTS);
log(`sending ${chats} chats (${concurrency} at a time) through faults`);
const load = runClient({
  url,
  apiKeys: customers.map((c) => c.key),
  chats,
  concurrency,
  mixAsync: true,
  deadline: Date.now() + (quick ? 5 : 20) * 60_000,
  runId: randomBytes(4).toString("hex"),
});
const loadStarted = Date.now();
const faults = runFaults(targets, { everyMs: quick ? 3_000 : 5_000, once: quick, stop: load });
const results = await load;
const injected = await faults;
const loadS = (Date.now() - loadStarted) / 1000;
log(`chats done; faults injected: ${injected.join(", ") || "none"}`);

// Stripe heals so that every report can finish; the workers keep retrying what failed.
stripe.clearFaults();
const drainStarted = Date.now();
const drained = await waitForDrain(db, (quick ? 3 : 5) * 60_000, log);
const drainS = (Date.now() - drainStarted) / 1000;
const figures = await audit(
  db,
  results,
  stripe,
  customers.map((c) => c.stripeCustomerId),
  llm.calls,
);
const meterCalls = stripe.calls["POST /v1/billing/meter_events"] ?? 0;
const ok =
  drained &&
  figures.lost === 0 &&
  figures.doubleBilled === 0 &&
  figures.stripeTotal === figures.ledgerTotal &&
  figures.creditsMismatch === 0;

console.log(
  `\nchaos ${quick ? "--quick " : ""}run: ${chats} chats, 1 web + 2 workers, ` +
    `${injected.filter((f) => f === "kill-worker").length} worker kills, ` +
    `${injected.filter((f) => f === "kill-redis").length} Redis kills, ` +
    `${injected.filter((f) => f === "restart-postgres").length} Postgres restarts; ` +
    `Stripe ${STRIPE_FAULTS.rate500 * 100}% 5xx, ${STRIPE_FAULTS.rate429 * 100}% 429, ` +
    `${Math.round((STRIPE_FAULTS.rateDrop + STRIPE_FAULTS.rateDropAfter) * 100)}% dropped (${meterCalls} meter-event calls); ` +
    `chats answered in ${loadS.toFixed(0)} s, ${drained ? "drained" : "NOT DRAINED"} ${drainS.toFixed(0)} s later\n` +
    formatFigures(figures),
);
for (const r of results.filter((r) => r.outcome !== "succeeded").slice(0, 5)) {
  console.log(`  chat ${r.index} ${r.outcome} after ${r.attempts} attempts: ${r.detail ?? ""}`);
}
console.log(ok ? "\nPASS: nothing lost, nothing billed twice" : `\nFAIL: see the figures; logs in ${logDir}`);

await children.stopAll();
await db.destroy();
await Promise.allSettled([redis.stop(), postgres.stop(), llm.close(), stripe.close()]);
if (ok && !args.keep) rmSync(dir, { recursive: true, force: true });
process.exit(ok ? 0 : 1);
