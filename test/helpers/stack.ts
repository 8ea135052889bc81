import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { rmSync } from "node:fs";
import OpenAI from "openai";
import { loadConfig, type Config } from "../../src/config.js";
import { createDeps, createWebDeps, type Deps, type WebDeps } from "../../src/deps.js";
import { startWeb } from "../../src/api/listen.js";
import { createApiKey, createCustomer } from "../../src/billing/customers/customers.js";
import { startWorkers, type Workers } from "../../jobs/worker.js";
import {
  startOpenAIEmulator,
  type OpenAIEmulator,
  type OpenAIEmulatorOptions,
} from "../../src/local/openai-emulator.js";
import { startStripeEmulator, type StripeEmulator } from "../../src/local/stripe-emulator.js";
import { startAnthropicEmulator, type AnthropicEmulator } from "../../src/local/anthropic-emulator.js";
import { startGeminiEmulator, type GeminiEmulator } from "../../src/local/gemini-emulator.js";
import type { Db } from "../../src/platform/db.js";
import type { Logger } from "../../src/platform/logger.js";
import { createReaderRedis, reconnectQuietly, scanKeys } from "../../src/platform/redis.js";
import { afterAll, beforeAll } from "vitest";
import { ask, chat, postChat, type ChatAnswer, type ChatRequestOptions } from "./chat.js";
import { createTestDatabase } from "./db.js";
import { startRedisCluster, type RedisClusterHandle } from "./redis-cluster.js";
import { startRedisServer, tempDir, type RedisServerHandle } from "./redis-server.js";
import { WEBHOOK_SECRET } from "./stripe-webhooks.js";
import { waitFor } from "./wait.js";

export { ask, waitFor, type ChatAnswer };

export const ADMIN_TOKEN = "test-admin-token-0123456789";

/** Env that points a stack at a Stripe emulator, with small backoffs so retries stay fast. */
export const reportingEnv = (emu: StripeEmulator, extra: Record<string, string> = {}) => ({
  STRIPE_SECRET_KEY: "sk_test_meterline",
  STRIPE_API_BASE: emu.url,
  STRIPE_TIMEOUT_MS: "5000",
  USAGE_FLUSH_INTERVAL_MS: "3600000",
  USAGE_SWEEP_INTERVAL_MS: "3600000",
  STRIPE_REPORT_BACKOFF_MS: "10",
  STRIPE_REPORT_BACKOFF_MAX_MS: "100",
  STRIPE_RATE_LIMIT_MS: "20",
  ...extra,
});

export interface StackOptions {
  /** Config overrides, applied last (over what `stripe` and `redis` set). */
  env?: Record<string, string>;
  /** The OpenAI emulator's latency, faults, answer sizes… */
  emulator?: OpenAIEmulatorOptions;
  /** false: no worker in the test process (the test starts its own, or none). */
  worker?: boolean;
  /**
   * A Stripe emulator as `stack.stripe`, signing webhooks with the secret the stack verifies and
   * delivering them to the stack. "reporting" also points the Stripe client at it (reportingEnv):
   * usage is reported to it and events may be re-fetched from it.
   */
  stripe?: "webhooks" | "reporting";
  /**
   * A private redis-server as `stack.redisServer`, for tests that kill, restart or FLUSHALL it
   * (never the shared one); "private-fsync" acknowledges a write only once it is on disk.
   * "cluster": a private 3-master Redis Cluster as `stack.redisCluster` ("cluster-replicas": with
   * one replica per master, for failovers), reached through REDIS_CLUSTER_NODES.
   */
  redis?: "shared" | "private" | "private-fsync" | "cluster" | "cluster-replicas";
  /**
   * The Anthropic and Gemini emulators as `stack.anthropic` and `stack.gemini`, with the
   * ANTHROPIC_* and GEMINI_* settings pointing the stack at them: Claude and Gemini models are
   * then served (through their official SDKs) beside the OpenAI emulator's.
   */
  providers?: boolean;
}

export interface Stack {
  config: Config;
  web: WebDeps;
  url: string;
  emulator: OpenAIEmulator;
  /** The Stripe emulator; only with the `stripe` option. */
  stripe: StripeEmulator;
  /** The Anthropic emulator; only with the `providers` option. */
  anthropic: AnthropicEmulator;
  /** The Gemini emulator; only with the `providers` option. */
  gemini: GeminiEmulator;
  /** The private Redis; only with `redis: "private"` or `"private-fsync"`. */
  redisServer: RedisServerHandle;
  /** The private Redis Cluster; only with `redis: "cluster"` or `"cluster-replicas"`. */
  redisCluster: RedisClusterHandle;
  db: Db;
  workers: Workers | undefined;
  /**
   * POST /v1/chat/completions with Bearer `key` (none when null) and `body` (an object, or a raw
   * string), read whole: status, headers, the parsed body or a stream's chunks.
   */
  chat(key: string | null, body?: object | string, opts?: ChatRequestOptions): Promise<ChatAnswer>;
  /** A streamed chat (`stream: true` added to an object body), its response unread. */
  chatStream(key: string, body?: object, opts?: ChatRequestOptions): Promise<Response>;
  /** Starts another web process-equivalent (own deps and connections, same Redis and queues). */
  startWeb(env?: Record<string, string>): Promise<{ web: WebDeps; url: string; close(): Promise<void> }>;
  /** Starts another worker process-equivalent (own deps and connections). */
  startWorker(
    env?: Record<string, string>,
    opts?: { name?: string; logger?: Logger },
  ): Promise<{ deps: Deps; workers: Workers; close(): Promise<void> }>;
  /** Runs `jobs/worker.ts` as a separate OS process on this stack (for kill and SIGTERM tests). */
  spawnWorkerProcess(env?: Record<string, string>): { child: ChildProcess; exited: Promise<number | null> };
  customer(opts?: {
    planId?: string;
  }): Promise<{ customerId: string; key: string; keyId: number; openai: OpenAI }>;
  close(): Promise<void>;
}

/**
 * The whole service on real Postgres and Redis: a web app on 127.0.0.1:0, a worker, and the OpenAI
 * emulator, with a fresh queue prefix so tests never see each other's jobs.
 */
export async function startStack(opts: StackOptions & { databaseUrl: string }): Promise<Stack> {
  const emulator = await startOpenAIEmulator(opts.emulator);
  const clustered = opts.redis === "cluster" || opts.redis === "cluster-replicas";
  const redisCluster = clustered
    ? await startRedisCluster({ replicas: opts.redis === "cluster-replicas" })
    : undefined;
  const redisDir =
    opts.redis && opts.redis !== "shared" && !clustered ? tempDir("meterline-redis") : undefined;
  const redisServer = redisDir
    ? await startRedisServer({ dir: redisDir, fsyncAlways: opts.redis === "private-fsync" })
    : undefined;
  const stripe = opts.stripe ? await startStripeEmulator({ webhookSecret: WEBHOOK_SECRET }) : undefined;
  const [anthropic, gemini] = opts.providers
    ? await Promise.all([startAnthropicEmulator(), startGeminiEmulator()])
    : [undefined, undefined];
  const baseEnv: Record<string, string> = {
    NODE_ENV: "test",
    DATABASE_URL: opts.databaseUrl,
    REDIS_URL: redisServer?.url ?? "redis://127.0.0.1:6379",
    ...(redisCluster ? { REDIS_CLUSTER_NODES: redisCluster.nodes } : {}),
    OPENAI_API_KEY: "sk-test",
    OPENAI_BASE_URL: emulator.url,
    ADMIN_TOKEN,
    QUEUE_PREFIX: `t${randomBytes(5).toString("hex")}`,
    CHAT_BACKOFF_MS: "20",
    LOG_LEVEL: "silent",
    ...(stripe ? { STRIPE_WEBHOOK_SECRET: WEBHOOK_SECRET } : {}),
    ...(stripe && opts.stripe === "reporting" ? reportingEnv(stripe) : {}),
    ...(anthropic ? { ANTHROPIC_API_KEY: "sk-ant-test", ANTHROPIC_BASE_URL: anthropic.url } : {}),
    ...(gemini ? { GEMINI_API_KEY: "gemini-test", GEMINI_BASE_URL: gemini.url } : {}),
    ...opts.env,
  };
  const extras: Array<{ close(): Promise<void> }> = [];
  const listen = async (env: Record<string, string>) => {
    const web = createWebDeps(loadConfig({ ...baseEnv, ...env }));
    await Promise.all([...web.queues.all.map((q) => q.waitUntilReady()), web.chatReplies.waitUntilReady()]);
    const server = await startWeb(web, 0);
    return { web, server, url: `http://127.0.0.1:${server.port}` };
  };
  const { web, server, url } = await listen({});
  const config = web.config;

  const startWorker = async (
    env: Record<string, string> = {},
    { name = "worker", logger }: { name?: string; logger?: Logger } = {},
  ) => {
    const deps = createDeps(loadConfig({ ...baseEnv, ...env }), name);
    const workers = startWorkers(logger ? { ...deps, logger } : deps);
    await Promise.all(workers.workers.map((w) => w.waitUntilReady()));
    const handle = {
      deps,
      workers,
      close: async () => {
        await workers.close();
        await deps.close();
      },
    };
    extras.push(handle);
    return handle;
  };
  const workers = opts.worker === false ? undefined : (await startWorker()).workers;

  // Webhooks the test sends go to this stack unless it names another URL.
  const stripeHere =
    stripe &&
    Object.assign(Object.create(stripe) as StripeEmulator, {
      sendWebhook: ((type, object, o = {}) =>
        stripe.sendWebhook(type, object, {
          url: `${url}/webhooks/stripe`,
          ...o,
        })) satisfies StripeEmulator["sendWebhook"],
    });
  const only = <T>(value: T | undefined, option: string): T => {
    if (value === undefined) throw new Error(`the stack was started without the ${option} option`);
    return value;
  };

  return {
    config,
    web,
    url,
    emulator,
    get stripe() {
      return only(stripeHere, "stripe");
    },
    get anthropic() {
      return only(anthropic, "providers");
    },
    get gemini() {
      return only(gemini, "providers");
    },
    get redisServer() {
      return only(redisServer, "redis");
    },
    get redisCluster() {
      return only(redisCluster, "redis");
    },
    db: web.db,
    workers,
    chat: (key, body, chatOpts) => chat(url, key, body, chatOpts),
    chatStream: (key, body = ask(), chatOpts) => postChat(url, key, { ...body, stream: true }, chatOpts),
    async startWeb(env = {}) {
      const started = await listen(env);
      const handle = {
        web: started.web,
        url: started.url,
        close: async () => {
          await started.server.stop();
          await started.web.close();
        },
      };
      extras.push(handle);
      return handle;
    },
    startWorker,
    spawnWorkerProcess(env = {}) {
      const child = spawn(process.execPath, ["--import", "tsx", "jobs/worker.ts"], {
        env: { PATH: process.env.PATH, ...baseEnv, ...env },
        stdio: "ignore",
      });
      const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
      return { child, exited };
    },
    async customer({ planId } = {}) {
      const customer = await createCustomer(web.db, { name: "Test Co", planId });
      const key = await createApiKey(web.db, customer.id);
      const openai = new OpenAI({ baseURL: `${url}/v1`, apiKey: key.key, maxRetries: 0 });
      return { customerId: customer.id, key: key.key, keyId: key.id, openai };
    },
    async close() {
      await Promise.allSettled(extras.map((extra) => extra.close()));
      await server.stop();
      await deleteKeys(config.redisUrl ?? "redis://127.0.0.1:6379", config.queuePrefix);
      await web.close();
      await emulator.close();
      await stripe?.close();
      await anthropic?.close();
      await gemini?.close();
      await redisServer?.stop();
      await redisCluster?.stop();
      if (redisDir) rmSync(redisDir, { recursive: true, force: true });
    },
  };
}

/** Removes every Redis key of one test's prefix, so the shared Redis does not fill up run after run. */
async function deleteKeys(url: string, prefix: string): Promise<void> {
  const redis = reconnectQuietly(createReaderRedis(url));
  try {
    for (const pattern of [`{${prefix}-*`, `${prefix}:*`]) {
      // One UNLINK per key: on a cluster a batch spans slots, which one multi-key UNLINK may not.
      await scanKeys(redis, pattern, async (keys) => {
        await Promise.all(keys.map((key) => redis.unlink(key)));
      });
    }
  } catch {
    // A test that stopped its own Redis has nothing left to clean.
  } finally {
    redis.disconnect();
  }
}

/**
 * The usual setup of a test file: a fresh database and a stack on it, started before the file's
 * tests and closed (database dropped) after them. The returned stack forwards to the one
 * `beforeAll` starts, so tests use it as they would use startStack's.
 */
export function useStack(opts: StackOptions = {}): Stack {
  let database: Awaited<ReturnType<typeof createTestDatabase>> | undefined;
  let started: Stack | undefined;
  // A cluster stack starts and joins three or six redis-servers first: on a busy machine that alone
  // can take most of the usual hook timeout.
  const startTimeoutMs = opts.redis === "cluster" || opts.redis === "cluster-replicas" ? 180_000 : undefined;
  beforeAll(async () => {
    database = await createTestDatabase();
    started = await startStack({ ...opts, databaseUrl: database.url });
  }, startTimeoutMs);
  afterAll(async () => {
    await started?.close();
    await database?.drop();
  });
  return new Proxy({} as Stack, {
    get(_, property) {
      if (!started) throw new Error("the test stack is used before beforeAll started it");
      // Unbound on purpose: the stack's methods are closures, and `db` is a function with properties.
      return Reflect.get(started, property);
    },
  });
}
