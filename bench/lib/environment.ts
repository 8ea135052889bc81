import { randomBytes } from "node:crypto";
import { mkdtempSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { Redis } from "ioredis";
import pg from "pg";
import { createDb, type Db } from "../../src/platform/db.js";
import { migrateLatest } from "../../src/platform/migrate.js";
import { seedDefaultPlans } from "../../src/billing/pricing/plans.js";
import { createApiKey, createCustomer } from "../../src/billing/customers/customers.js";
import { grantCredits } from "../../src/billing/credits/grants.js";
import { startRedisServer } from "../../src/local/redis-server.js";

const POSTGRES = "postgres://postgres@127.0.0.1:5432";
const SHARED_REDIS_URL = "redis://127.0.0.1:6379";

export interface BenchEnvironment {
  databaseUrl: string;
  redisUrl: string;
  /**
   * pid of the run's private redis-server (its CPU is the run's alone), or undefined when none could
   * be started and the run uses the shared Redis at 127.0.0.1:6379.
   */
  redisPid: number | undefined;
  /** The database's name, to find its backends in pg_stat_activity. */
  databaseName: string;
  /** QUEUE_PREFIX of this run: every Redis key it creates contains it. */
  queuePrefix: string;
  db: Db;
  redis: Redis;
  logDir: string;
  /** A customer on the usage plan and its API key. */
  customer: { id: string; key: string };
  /** Another on the same plan with prepaid credits that outlast any run: its usage is paid from them. */
  creditCustomer: { id: string; key: string };
  /** The environment of meterline's own processes (web, worker) in this run. */
  meterlineEnv(extra?: Record<string, string>): Record<string, string>;
  /** Drops the database and deletes every Redis key of this run. */
  cleanup(): Promise<void>;
}

/** The admin token of the run's web process. */
export const BENCH_ADMIN_TOKEN = "bench-admin-token-0123456789";

/**
 * A fresh, migrated database on the shared Postgres and a fresh queue prefix on a private
 * redis-server (no persistence) started for the run, so CPU per chat can count Redis's own CPU and
 * other work on the machine cannot reach the run's Redis; the shared Redis when none can be started.
 */
export async function createBenchEnvironment(log: (message: string) => void): Promise<BenchEnvironment> {
  const id = randomBytes(5).toString("hex");
  const name = `meterline_bench_${id}`;
  const queuePrefix = `bench${id}`;
  await adminQuery(`CREATE DATABASE "${name}"`);
  const databaseUrl = `${POSTGRES}/${name}`;
  const db = createDb(databaseUrl, { max: 5 });
  const logDir = mkdtempSync(path.join(os.tmpdir(), `meterline-bench-${id}-`));
  const privateRedis = await startRedisServer({ dir: path.join(logDir, "redis"), appendonly: false }).catch(
    (err: unknown) => {
      log(`no private redis-server (${String(err).split("\n")[0]}); using the shared ${SHARED_REDIS_URL}`);
      return undefined;
    },
  );
  const redisUrl = privateRedis?.url ?? SHARED_REDIS_URL;
  const redis = new Redis(redisUrl, { maxRetriesPerRequest: null });
  const cleanup = async () => {
    await Promise.allSettled([db.destroy(), deleteKeys(redis, queuePrefix)]);
    redis.disconnect();
    await privateRedis?.stop();
    await adminQuery(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
  };
  try {
    await migrateLatest(db);
    await seedDefaultPlans(db);
    const customer = await createCustomer(db, { name: "Bench Co", planId: "usage" });
    const key = await createApiKey(db, customer.id);
    const creditCustomer = await createCustomer(db, { name: "Bench Credits Co", planId: "usage" });
    const creditKey = await createApiKey(db, creditCustomer.id);
    await grantCredits(db, {
      customerId: creditCustomer.id,
      amountMicros: 1_000_000_000_000,
      source: "manual",
    });
    return {
      databaseUrl,
      redisUrl,
      redisPid: privateRedis?.pid,
      databaseName: name,
      queuePrefix,
      db,
      redis,
      logDir,
      customer: { id: customer.id, key: key.key },
      creditCustomer: { id: creditCustomer.id, key: creditKey.key },
      meterlineEnv: (extra = {}) => ({
        NODE_ENV: "production",
        DATABASE_URL: databaseUrl,
        REDIS_URL: redisUrl,
        QUEUE_PREFIX: queuePrefix,
        OPENAI_API_KEY: "sk-bench",
        LOG_LEVEL: "info",
        // One bench key sends hundreds of requests per second: measure the service, not the limiter.
        RATE_LIMIT_PER_MINUTE: "0",
        // The admin routes (the dashboard, section h) are served only with a token.
        ADMIN_TOKEN: BENCH_ADMIN_TOKEN,
        ...extra,
      }),
      cleanup,
    };
  } catch (err) {
    await cleanup();
    throw err;
  }
}

async function adminQuery(sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: `${POSTGRES}/postgres` });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

/** Deletes every key whose name contains the run's prefix (queues are `{prefix-name}:…`). */
async function deleteKeys(redis: Redis, prefix: string): Promise<void> {
  let cursor = "0";
  do {
    const [next, keys] = await redis.scan(cursor, "MATCH", `*${prefix}*`, "COUNT", 1000);
    cursor = next;
    if (keys.length > 0) await redis.unlink(...keys);
  } while (cursor !== "0");
}
