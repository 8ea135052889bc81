import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import OpenAI from "openai";
import { Redis } from "ioredis";
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
import type { Db } from "../../src/platform/db.js";
import { afterAll, beforeAll } from "vitest";
import { createTestDatabase } from "./db.js";
import { waitFor } from "./wait.js";

export { waitFor };

export const ADMIN_TOKEN = "test-admin-token-0123456789";

export interface Stack {
  config: Config;
  web: WebDeps;
  url: string;
  emulator: OpenAIEmulator;
  db: Db;
  workers: Workers | undefined;
  /** Starts another worker process-equivalent (own deps and connections). */
  startWorker(
    env?: Record<string, string>,
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
export async function startStack(opts: {
  databaseUrl: string;
  env?: Record<string, string>;
  emulator?: OpenAIEmulatorOptions;
  worker?: boolean;
}): Promise<Stack> {
  const emulator = await startOpenAIEmulator(opts.emulator);
  const baseEnv: Record<string, string> = {
    NODE_ENV: "test",
    DATABASE_URL: opts.databaseUrl,
    REDIS_URL: "redis://127.0.0.1:6379",
    OPENAI_API_KEY: "sk-test",
    OPENAI_BASE_URL: emulator.url,
    ADMIN_TOKEN,
    QUEUE_PREFIX: `t${randomBytes(5).toString("hex")}`,
    CHAT_BACKOFF_MS: "20",
    LOG_LEVEL: "silent",
    ...opts.env,
  };
  const config = loadConfig(baseEnv);
  const web = createWebDeps(config);
  await Promise.all([...web.queues.all.map((q) => q.waitUntilReady()), web.chatEvents.waitUntilReady()]);
  const server = await startWeb(web, 0);
  const url = `http://127.0.0.1:${server.port}`;
  const extraWorkers: Array<{ close(): Promise<void> }> = [];

  const startWorker = async (env: Record<string, string> = {}) => {
    const deps = createDeps(loadConfig({ ...baseEnv, ...env }), "worker");
    const workers = startWorkers(deps);
    await Promise.all(workers.workers.map((w) => w.waitUntilReady()));
    const handle = {
      deps,
      workers,
      close: async () => {
        await workers.close();
        await deps.close();
      },
    };
    extraWorkers.push(handle);
    return handle;
  };
  const workers = opts.worker === false ? undefined : (await startWorker()).workers;

  return {
    config,
    web,
    url,
    emulator,
    db: web.db,
    workers,
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
      await Promise.allSettled(extraWorkers.map((w) => w.close()));
      await server.stop();
      await deleteKeys(config.redisUrl ?? "redis://127.0.0.1:6379", config.queuePrefix);
      await web.close();
      await emulator.close();
    },
  };
}

/** Removes every Redis key of one test's prefix, so the shared Redis does not fill up run after run. */
async function deleteKeys(url: string, prefix: string): Promise<void> {
  const redis = new Redis(url, { maxRetriesPerRequest: 1, lazyConnect: true });
  redis.on("error", () => {});
  try {
    await redis.connect();
    for (const pattern of [`{${prefix}-*`, `${prefix}:*`]) {
      let cursor = "0";
      do {
        const [next, keys] = await redis.scan(cursor, "MATCH", pattern, "COUNT", 1000);
        cursor = next;
        if (keys.length) await redis.unlink(...keys);
      } while (cursor !== "0");
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
export function useStack(opts: Omit<Parameters<typeof startStack>[0], "databaseUrl"> = {}): Stack {
  let database: Awaited<ReturnType<typeof createTestDatabase>> | undefined;
  let started: Stack | undefined;
  beforeAll(async () => {
    database = await createTestDatabase();
    started = await startStack({ ...opts, databaseUrl: database.url });
  });
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
