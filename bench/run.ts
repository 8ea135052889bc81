// `npm run bench`: measures meterline against baselines taken in the same run, on this machine,
// and prints one markdown table. See the README "Performance" section and `--help`.
import { writeFileSync } from "node:fs";
import os from "node:os";
import type { BenchContext, Section } from "./lib/context.js";
import { createBenchEnvironment } from "./lib/environment.js";
import { parseOptions, SECTIONS } from "./lib/options.js";
import { createStack } from "./lib/stack.js";
import { compileForBench } from "./lib/children.js";
import { createCpuSplit } from "./lib/cpu-split.js";
import { renderTable, unavailable, type Row } from "./lib/table.js";
import { baselines } from "./sections/baselines.js";
import { addedLatency, asyncAccept, syncThroughput } from "./sections/chat-api.js";
import { peerComparison, PEER_ROWS } from "./sections/peer.js";
import { workerCapacity } from "./sections/worker-capacity.js";
import { usageIngestion } from "./sections/usage-ingestion.js";
import { stripeReporting } from "./sections/stripe-reporting.js";
import { webhookIntake } from "./sections/webhook-intake.js";
import { meterStream } from "./sections/meter-stream.js";
import { workerScaling } from "./sections/worker-scaling.js";
import { dashboardOnLargeLedger } from "./sections/dashboard.js";
import { ledgerAtScale } from "./sections/ledger.js";

const SECTION_RUNNERS: Record<(typeof SECTIONS)[number], { run: Section; rows: [string, string][] }> = {
  baselines: { run: baselines, rows: [["B1", "bare Express endpoint"]] },
  a: { run: asyncAccept, rows: [["a1", "async chat accept"]] },
  b: {
    run: syncThroughput,
    rows: [
      ["b1", "sync chats end to end"],
      ["b3", "CPU per sync chat"],
      ["b4", "Redis round trips per sync chat"],
      ["b5", "Postgres round trips per sync chat"],
    ],
  },
  c: { run: addedLatency, rows: [["c1", "added latency"]] },
  p: { run: peerComparison, rows: PEER_ROWS },
  d: { run: workerCapacity, rows: [["d1", "one worker, chats in flight"]] },
  e: { run: usageIngestion, rows: [["e1", "usage ingestion"]] },
  f: { run: stripeReporting, rows: [["f1", "Stripe meter calls"]] },
  g: { run: webhookIntake, rows: [["g1", "webhook intake"]] },
  h: { run: meterStream, rows: [["h1", "meter events/s through the v2 stream"]] },
  i: { run: workerScaling, rows: [["i4", "throughput 2 workers / 1 worker"]] },
  j: {
    run: dashboardOnLargeLedger,
    rows: [
      ["j1", "dashboard page, all customers"],
      ["j2", "dashboard page, one customer's usage"],
    ],
  },
  k: {
    run: ledgerAtScale,
    rows: [
      ["k1", "GET /v1/usage p99, large ledger"],
      ["k2", "one flush p99, large ledger"],
    ],
  },
};

/**
 * Sections that load a large ledger first (j: 10 million rows, k: 50 million by default): minutes
 * of loading each, so the default and quick runs leave them out unless `--only` names them. The
 * smoke run (small row counts) runs them.
 */
const ON_REQUEST = new Set<string>(["j", "k"]);

const options = parseOptions(process.argv.slice(2));
const started = Date.now();
const log = (message: string) =>
  process.stderr.write(`[bench ${((Date.now() - started) / 1000).toFixed(1)}s] ${message}\n`);

let compiledRoot: string | undefined;
if (options.compiled) {
  log("compiling the processes under test (--tsx skips this)");
  compiledRoot = compileForBench();
}
const env = await createBenchEnvironment(log);
const stack = createStack(env, options.cpuProf, compiledRoot);
const rows: Row[] = [];
// The run's private redis-server by its pid; the shared one (when no private one started) by name.
const privateRedis = env.redisPid === undefined ? [] : [{ name: "redis-server", pid: env.redisPid }];
const cpuSplit = createCpuSplit(
  () => [...stack.children.running(), ...privateRedis],
  privateRedis.length ? ["postgres"] : ["redis-server", "postgres"],
);
let interrupted = false;
const cleanup = async () => {
  await stack.close().catch((err) => log(`stopping processes: ${String(err)}`));
  await env.cleanup().catch((err) => log(`cleanup: ${String(err)}`));
};
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => {
    interrupted = true;
    log(`${signal}: cleaning up`);
    void cleanup().then(() => process.exit(130));
  });
}

try {
  log(`logs in ${env.logDir}; database and queue prefix ${env.queuePrefix}`);
  // Start the emulator and web processes while the baselines run (idle until their rows; a failure
  // surfaces in the first row that needs them).
  // Not for k alone: it loads its ledger before any process under test starts.
  if (!options.only || [...options.only].some((s) => s !== "baselines" && s !== "k"))
    stack.web().catch(() => {});
  const ctx: BenchContext = { options, env, stack, row: (id) => rows.find((r) => r.id === id), log };
  for (const name of SECTIONS) {
    if (options.only && !options.only.has(name)) continue;
    if (interrupted) break;
    const section = SECTION_RUNNERS[name];
    if (!options.only && options.mode !== "smoke" && ON_REQUEST.has(name)) {
      // Loading millions of ledger rows takes minutes: these rows are measured when named.
      const note = `not measured (run with --only ${name})`;
      for (const [id, label] of section.rows) rows.push(unavailable(id, label, note));
      continue;
    }
    cpuSplit.section(name);
    try {
      rows.push(...(await section.run(ctx)));
    } catch (err) {
      // One broken section must not hide the others' figures; its rows say what went wrong.
      log(`${name} failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
      for (const [id, label] of section.rows) rows.push(unavailable(id, label, `error: ${firstLine(err)}`));
    }
  }
} finally {
  cpuSplit.stop();
  await cleanup();
}

const cpus = os.cpus();
const machine = `${cpus.length} × ${cpus[0]?.model.trim() ?? "cpu"}, ${Math.round(os.totalmem() / 2 ** 30)} GB, Node ${process.version}, ${os.platform()} ${os.release()}`;
process.stdout.write(`\nmeterline bench (${options.mode}), ${machine}\n\n${renderTable(rows)}\n`);
const split = cpuSplit.render();
if (split) {
  process.stdout.write(
    `\nCPU by process during each section, in cores busy on average (${cpus.length} = all of this machine):\n\n${split}\n`,
  );
}
process.stdout.write(`\n${((Date.now() - started) / 1000).toFixed(0)} s in total\n`);
if (options.json) writeFileSync(options.json, JSON.stringify({ mode: options.mode, machine, rows }, null, 2));
process.exit(0);

function firstLine(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).split("\n")[0]!.slice(0, 120);
}
