import { Queue } from "bullmq";
import { startStripeEmulator, type StripeEmulator } from "../../src/local/stripe-emulator.js";
import { loadConfig } from "../../src/config.js";
import { chatJobOptions, QUEUE, queuePrefix, type ChatJobData } from "../../src/queues/queues.js";
import { createChildren, freePort, waitForHttp, type Child, type Children } from "./children.js";
import type { BenchEnvironment } from "./environment.js";

/** The chat request every chat row sends: a short prompt, a short answer. */
export const CHAT_BODY = JSON.stringify({
  model: "gpt-4o-mini",
  messages: [{ role: "user", content: "Say hello to the benchmark in five words." }],
  max_tokens: 16,
});

export interface Stack {
  children: Children;
  /** The OpenAI emulator process (latency 0 until changed). */
  emulator(): Promise<{ url: string; setLatency(ms: number): Promise<void> }>;
  /** meterline's web process (src/server.ts) on this run's database and queue prefix. */
  web(): Promise<{ url: string; child: Child }>;
  /** Another web process; `env` adds to the run's environment (another Redis or database URL, say). */
  startWeb(name: string, env?: Record<string, string>): Promise<{ url: string; child: Child }>;
  /** A meterline worker process (jobs/worker.ts); `env` adds to the run's environment. */
  startWorker(name: string, env?: Record<string, string>): Promise<Child>;
  /**
   * The Stripe emulator, in this process: it only builds signed events (g) and answers a few meter
   * calls per flush (f), so it takes little from the load generator.
   */
  stripeEmulator(): Promise<StripeEmulator>;
  /** The worker with the default configuration, shared by the rows that need one. */
  defaultWorker(): Promise<Child>;
  stopDefaultWorker(): Promise<void>;
  /** Producer access to the run's chat queue. */
  chatQueue(): Queue<ChatJobData>;
  /** Adds chats in the chat job shape of src/queues/queues.ts, as the API would, in bulk. */
  addChats(n: number, opts?: { customerId?: string; tag?: string }): Promise<void>;
  close(): Promise<void>;
}

/** Starts the processes under test lazily and keeps each one for every section that needs it. */
export function createStack(env: BenchEnvironment, cpuProfDir?: string, compiledRoot?: string): Stack {
  const children = createChildren(env.logDir, cpuProfDir, compiledRoot);
  let emulator: ReturnType<Stack["emulator"]> | undefined;
  let web: ReturnType<Stack["web"]> | undefined;
  let queue: Queue<ChatJobData> | undefined;
  let worker: Promise<Child> | undefined;
  let stripe: Promise<StripeEmulator> | undefined;
  const config = loadConfig(env.meterlineEnv());

  const startEmulator = async () => {
    const port = await freePort();
    const child = children.start("openai-emulator", "bench/procs/openai-emulator.ts", { PORT: String(port) });
    await child.waitForLog(/READY/);
    const url = `http://127.0.0.1:${port}/v1`;
    return {
      url,
      async setLatency(ms: number) {
        const res = await fetch(`http://127.0.0.1:${port}/_emulator/config`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ latencyMs: ms }),
        });
        if (!res.ok) throw new Error(`emulator config: ${res.status}`);
      },
    };
  };

  const stack: Stack = {
    children,
    emulator: () => (emulator ??= startEmulator()),
    web: () => (web ??= stack.startWeb("web")),
    async startWeb(name, extra = {}) {
      const { url: llmUrl } = await stack.emulator();
      const port = await freePort();
      const child = children.start(
        name,
        "src/server.ts",
        env.meterlineEnv({ PORT: String(port), OPENAI_BASE_URL: llmUrl, ...WEBHOOK_ENV, ...extra }),
      );
      const url = `http://127.0.0.1:${port}`;
      await waitForHttp(`${url}/healthz`, child);
      return { url, child };
    },
    async startWorker(name, extra = {}) {
      const { url: llmUrl } = await stack.emulator();
      const child = children.start(
        name,
        "jobs/worker.ts",
        env.meterlineEnv({ OPENAI_BASE_URL: llmUrl, ...extra }),
      );
      // A loaded machine (shared with other work) can take more than the default 30 s to boot one.
      await child.waitForLog(/worker started/, 120_000);
      return child;
    },
    stripeEmulator: () => (stripe ??= startStripeEmulator({ webhookSecret: WEBHOOK_SECRET })),
    defaultWorker: () => (worker ??= stack.startWorker("worker")),
    async stopDefaultWorker() {
      const stopping = worker;
      worker = undefined;
      await (await stopping)?.stop();
    },
    chatQueue: () =>
      (queue ??= new Queue<ChatJobData>(QUEUE.chat, {
        connection: env.redis,
        prefix: queuePrefix(env.queuePrefix, QUEUE.chat),
        defaultJobOptions: chatJobOptions(config),
      })),
    async addChats(n, { customerId = env.customer.id, tag = "d" } = {}) {
      const request = JSON.parse(CHAT_BODY) as ChatJobData["request"];
      for (let i = 0; i < n; i += 1000) {
        const jobs = Array.from({ length: Math.min(1000, n - i) }, (_, j) => {
          const requestId = `chat_bench${tag}${i + j}`;
          const data: ChatJobData = {
            requestId,
            customerId,
            planId: "usage",
            request,
            bodyHash: "bench",
            receivedAt: new Date().toISOString(),
          };
          return { name: "chat", data, opts: { jobId: requestId } };
        });
        await stack.chatQueue().addBulk(jobs);
      }
    },
    async close() {
      await children.stopAll();
      await queue?.close();
      await (await stripe)?.close();
    },
  };
  return stack;
}

/** Webhook signing secret of the run (row g signs with it). */
export const WEBHOOK_SECRET = "whsec_meterline_bench";
const WEBHOOK_ENV = { STRIPE_WEBHOOK_SECRET: WEBHOOK_SECRET };
