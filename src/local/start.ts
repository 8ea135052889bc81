import { portalSecret, portalSession, signPortalLink } from "../billing/customers/portal-links.js";
import { randomBytes } from "node:crypto";
import path from "node:path";
import { loadConfigOrExit, loadConfigWith } from "../config.js";
import { createDeps, createWebDeps } from "../deps.js";
import { startWeb } from "../api/listen.js";
import { migrateLatest } from "../platform/migrate.js";
import { seedDefaultPlans } from "../billing/pricing/plans.js";
import { createApiKey, createCustomer } from "../billing/customers/customers.js";
import { startWorkers } from "../../jobs/worker.js";
import { resolvePostgres, resolveRedis, type ResolvedService } from "./services.js";
import { startGeminiEmulator } from "./gemini-emulator.js";
import { startAnthropicEmulator } from "./anthropic-emulator.js";
import { startOpenAIEmulator } from "./openai-emulator.js";
import { startStripeEmulator, type StripeEmulator } from "./stripe-emulator.js";
import { setupStripe } from "../billing/reporting/stripe-setup.js";

/**
 * `npm start`: the whole stack on one machine for a newcomer — Postgres and Redis (found or
 * started), migrations, a demo customer and key, the emulators when no real keys are set, and
 * web + worker in this process. Ctrl-C stops everything it started.
 */
const say = (line = "") => process.stdout.write(`${line}\n`);
const log = (line: string) => say(`  · ${line}`);
const stops: Array<() => Promise<unknown>> = [];

async function main() {
  const initial = loadConfigOrExit();
  const dataDir = path.resolve(".data");
  say("meterline — starting the local stack");

  const postgres: ResolvedService = await resolvePostgres({
    url: initial.explicitUrls.database,
    dataDir,
    log,
  });
  stops.push(() => postgres.stop());
  const redis: ResolvedService = await resolveRedis({ url: initial.explicitUrls.redis, dataDir, log });
  stops.push(() => redis.stop());

  const overrides: Record<string, string> = {
    DATABASE_URL: postgres.url,
    REDIS_URL: redis.url,
    ADMIN_TOKEN: initial.adminToken ?? randomBytes(18).toString("base64url"),
  };
  const banners: string[] = [];
  if (!initial.openaiApiKey) {
    const openai = await startOpenAIEmulator({ latencyMs: 150, chunkDelayMs: 15 });
    stops.push(() => openai.close());
    overrides.OPENAI_API_KEY = "sk-local-emulator";
    overrides.OPENAI_BASE_URL = openai.url;
    banners.push(
      `OPENAI_API_KEY is not set: chats are answered by the local OpenAI emulator at ${openai.url}`,
    );
  }
  if (!initial.gemini) {
    const gemini = await startGeminiEmulator({ latencyMs: 150, chunkDelayMs: 15 });
    stops.push(() => gemini.close());
    overrides.GEMINI_API_KEY = "gemini-local-emulator";
    overrides.GEMINI_BASE_URL = gemini.url;
    banners.push(
      `GEMINI_API_KEY is not set: Gemini models are answered by the local Gemini emulator at ${gemini.url}`,
    );
  }
  if (!initial.anthropic) {
    const anthropic = await startAnthropicEmulator({ latencyMs: 150, chunkDelayMs: 15 });
    stops.push(() => anthropic.close());
    overrides.ANTHROPIC_API_KEY = "sk-ant-local-emulator";
    overrides.ANTHROPIC_BASE_URL = anthropic.url;
    banners.push(
      `ANTHROPIC_API_KEY is not set: Claude models are answered by the local Anthropic emulator at ${anthropic.url}`,
    );
  }
  let stripeEmulator: StripeEmulator | undefined;
  if (!initial.stripeSecretKey) {
    const stripe = (stripeEmulator = await startStripeEmulator({
      webhookSecret: initial.stripeWebhookSecret,
      webhookUrl: `http://127.0.0.1:${initial.port}/webhooks/stripe`,
    }));
    stops.push(() => stripe.close());
    overrides.STRIPE_SECRET_KEY = "sk_test_local_emulator";
    overrides.STRIPE_API_BASE = stripe.url;
    overrides.STRIPE_WEBHOOK_SECRET = initial.stripeWebhookSecret ?? "whsec_meterline_emulator";
    banners.push(
      `STRIPE_SECRET_KEY is not set: usage is reported to the local Stripe emulator at ${stripe.url}`,
    );
  }
  const config = loadConfigWith(overrides);

  const web = createWebDeps(config);
  stops.unshift(() => web.close());
  const applied = await migrateLatest(web.db);
  await seedDefaultPlans(web.db);
  log(applied.length ? `migrated: ${applied.join(", ")}` : "schema up to date");

  const demo =
    (await web.db("customers").where({ name: "Demo Co" }).first("id")) ??
    (await createCustomer(web.db, { name: "Demo Co", email: "demo@example.com", planId: "pro" }));
  const key = await createApiKey(web.db, demo.id);
  if (stripeEmulator && web.stripe) {
    // The emulator starts empty every time: give it the meter, products and prices of the plans,
    // and the demo customer a Stripe customer, so usage flows all the way to a meter event.
    await setupStripe({ db: web.db, config, stripe: web.stripe });
    const { id } = stripeEmulator.createCustomer({ name: "Demo Co", email: "demo@example.com" });
    await web.db("customers").where({ id: demo.id }).update({ stripe_customer_id: id });
    log(`Stripe emulator: meter, products and prices created; Demo Co is ${id}`);
  }

  const workerDeps = createDeps(config, "worker");
  const workers = startWorkers(workerDeps);
  stops.unshift(async () => {
    await workers.close();
    await workerDeps.close();
  });
  let server;
  try {
    server = await startWeb(web, config.port);
  } catch (err) {
    throw new Error(
      `could not listen on port ${config.port} (${(err as Error).message}); set PORT to another port`,
    );
  }
  stops.unshift(() => server.stop());

  const base = `http://localhost:${server.port}`;
  say();
  for (const banner of banners) say(`  ⚠ ${banner}`);
  say();
  say(`  API          ${base}/v1`);
  say(`  Bull Board   ${base}/admin/queues  (user: admin, password: ${config.adminToken})`);
  say(`  Dashboard    ${base}/admin  (same login)`);
  const portalKey = portalSecret(config);
  if (portalKey)
    say(`  Demo portal  ${portalSession(base, signPortalLink(portalKey, demo.id)).url}  (valid 1 hour)`);
  say(`  Admin token  ${config.adminToken}`);
  if (stripeEmulator) {
    say(`  Stripe emu   ${stripeEmulator.url}  (meter events: ${stripeEmulator.url}/_emulator/meter_events)`);
  }
  say(`  Demo customer ${demo.id} on plan "pro", API key (new on every start):`);
  say(`    ${key.key}`);
  say();
  say("  Try it:");
  say(`    curl -s ${base}/v1/chat/completions \\`);
  say(`      -H "Authorization: Bearer ${key.key}" -H "Content-Type: application/json" \\`);
  say(`      -d '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"Hello, meterline!"}]}'`);
  say();
  say("  Ctrl-C stops everything this command started.");
}

let stopping = false;
async function stop(code: number) {
  if (stopping) return;
  stopping = true;
  say("\nmeterline — stopping");
  for (const close of stops) {
    await close().catch((err) => say(`  could not stop cleanly: ${(err as Error).message}`));
  }
  process.exit(code);
}
process.once("SIGINT", () => void stop(0));
process.once("SIGTERM", () => void stop(0));

main().catch(async (err) => {
  process.stderr.write(`\nmeterline: ${(err as Error).message}\n`);
  await stop(1);
});
