import { parseArgs } from "node:util";

/** Sizes and durations of one bench run; `--quick` and `--smoke` change the defaults, flags override. */
export interface BenchOptions {
  mode: "full" | "quick" | "smoke";
  /** Seconds of measured load per HTTP row. */
  duration: number;
  /** Seconds of unmeasured load before each HTTP row (JIT, pools, connections). */
  warmup: number;
  /** Concurrent connections for the throughput rows (a), (b) and their baselines. */
  connections: number;
  /** Jobs per raw BullMQ baseline. */
  jobs: number;
  /** Chats for (d), and for each worker count in (i). */
  chats: number;
  /** Chats in flight in (d) and per worker in (i): the worker's CHAT_CONCURRENCY. */
  inFlight: number;
  /** Emulator latency in (d), ms. */
  llmLatencyMs: number;
  /** Chats for (f); the row is scaled to calls per 10,000 chats. */
  reportChats: number;
  /** Ledger rows loaded for (h), the dashboard on a large ledger. */
  dashboardRows: number;
  /** Ledger rows loaded for (k), GET /v1/usage and the flush on a large partitioned ledger. */
  ledgerRows: number;
  /** Sections to run (all by default). */
  only: Set<string> | undefined;
  /** Write the rows as JSON here too. */
  json: string | undefined;
  /** Run the processes under test with `node --cpu-prof` into this directory. */
  cpuProf: string | undefined;
  /** Run the processes under test from compiled JavaScript (as in production) rather than tsx. */
  compiled: boolean;
  /** Measure Portkey's open-source gateway beside meterline (section p); its rows are n/a without. */
  peer: boolean;
  /** Measured seconds per load level in section p. */
  peerDuration: number;
}

export const SECTIONS = ["baselines", "a", "b", "c", "p", "d", "e", "f", "g", "h", "i", "j", "k"] as const;

const PRESETS: Record<
  BenchOptions["mode"],
  Omit<BenchOptions, "mode" | "only" | "json" | "cpuProf" | "compiled" | "peer">
> = {
  full: {
    // 6 s per HTTP row: thousands of samples at these rates, and the whole run under 5 minutes.
    duration: 6,
    warmup: 1.5,
    connections: 50,
    jobs: 20_000,
    chats: 6_000,
    inFlight: 1_000,
    llmLatencyMs: 1_000,
    reportChats: 10_000,
    dashboardRows: 10_000_000,
    ledgerRows: 50_000_000,
    peerDuration: 5,
  },
  quick: {
    duration: 4,
    warmup: 1,
    connections: 50,
    jobs: 5_000,
    chats: 3_000,
    inFlight: 1_000,
    llmLatencyMs: 1_000,
    reportChats: 2_000,
    dashboardRows: 1_000_000,
    ledgerRows: 1_000_000,
    peerDuration: 4,
  },
  smoke: {
    duration: 0.5,
    warmup: 0.2,
    connections: 10,
    jobs: 200,
    chats: 100,
    inFlight: 50,
    llmLatencyMs: 100,
    reportChats: 100,
    dashboardRows: 20_000,
    ledgerRows: 20_000,
    peerDuration: 0.5,
  },
};

/** The peer's pinned version: figures compare with one release, not whatever is newest. */
export const PEER_VERSION = "1.15.2";

export const USAGE = `npm run bench -- [flags]

  --quick                shorter run (about a minute)
  --smoke                seconds-long run that only checks the harness (CI)
  --duration <s>         measured seconds per HTTP row (default 6)
  --warmup <s>           unmeasured seconds before each HTTP row (default 1.5)
  --connections <n>      connections for the throughput rows (default 50)
  --jobs <n>             jobs per raw BullMQ baseline (default 20000)
  --chats <n>            chats for row d (default 6000)
  --in-flight <n>        chats in flight for row d (default 1000)
  --llm-latency <ms>     emulator latency for row d (default 1000)
  --report-chats <n>     chats for row f, and reports for row h (default 10000)
  --dashboard-rows <n>   ledger rows loaded for row j (default 10000000)
  --ledger-rows <n>      ledger rows loaded for row k (default 50000000)
  --peer                 also measure Portkey's open-source gateway (@portkey-ai/gateway ${PEER_VERSION},
                         installed into a temporary folder) beside meterline: section p
  --peer-duration <s>    measured seconds per load level in section p (default 5)
  --only <list>          sections to run: ${SECTIONS.join(",")}
  --json <file>          also write the rows as JSON
  --tsx                  run the processes under test through tsx instead of compiling them first
  --cpu-prof <dir>       profile the processes under test (node --cpu-prof)
`;

export function parseOptions(argv: string[]): BenchOptions {
  const { values } = parseArgs({
    args: argv,
    options: {
      quick: { type: "boolean" },
      smoke: { type: "boolean" },
      duration: { type: "string" },
      warmup: { type: "string" },
      connections: { type: "string" },
      jobs: { type: "string" },
      chats: { type: "string" },
      "in-flight": { type: "string" },
      "llm-latency": { type: "string" },
      "report-chats": { type: "string" },
      "dashboard-rows": { type: "string" },
      "ledger-rows": { type: "string" },
      only: { type: "string" },
      json: { type: "string" },
      "cpu-prof": { type: "string" },
      tsx: { type: "boolean" },
      peer: { type: "boolean" },
      "peer-duration": { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    process.stdout.write(USAGE);
    process.exit(0);
  }
  const mode = values.smoke ? "smoke" : values.quick ? "quick" : "full";
  const preset = PRESETS[mode];
  const num = (flag: string, given: string | undefined, fallback: number, min = 0): number => {
    if (given === undefined) return fallback;
    const n = Number(given);
    if (!Number.isFinite(n) || n < min) throw new Error(`--${flag} must be a number ≥ ${min}`);
    return n;
  };
  const only = values.only?.split(",").map((s) => s.trim());
  const unknown = only?.filter((s) => !(SECTIONS as readonly string[]).includes(s));
  if (unknown?.length) throw new Error(`--only: unknown section(s) ${unknown.join(", ")}`);
  return {
    mode,
    duration: num("duration", values.duration, preset.duration, 0.1),
    warmup: num("warmup", values.warmup, preset.warmup),
    connections: Math.round(num("connections", values.connections, preset.connections, 1)),
    jobs: Math.round(num("jobs", values.jobs, preset.jobs, 1)),
    chats: Math.round(num("chats", values.chats, preset.chats, 1)),
    inFlight: Math.round(num("in-flight", values["in-flight"], preset.inFlight, 1)),
    llmLatencyMs: num("llm-latency", values["llm-latency"], preset.llmLatencyMs),
    reportChats: Math.round(num("report-chats", values["report-chats"], preset.reportChats, 1)),
    dashboardRows: Math.round(num("dashboard-rows", values["dashboard-rows"], preset.dashboardRows, 1)),
    ledgerRows: Math.round(num("ledger-rows", values["ledger-rows"], preset.ledgerRows, 1)),
    only: only ? new Set(only) : undefined,
    json: values.json,
    cpuProf: values["cpu-prof"],
    // Production runs compiled JavaScript; smoke runs skip the compile to stay seconds long.
    compiled: !values.tsx && mode !== "smoke",
    peer: values.peer ?? false,
    peerDuration: num("peer-duration", values["peer-duration"], preset.peerDuration, 0.1),
  };
}
