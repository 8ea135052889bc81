// Baselines B3 and B4: raw BullMQ throughput on this machine. Adds JOBS jobs with addBulk, then
// one Worker (CONCURRENCY) processes them as no-ops (MODE=noop) or with one unique-key INSERT into
// Postgres each (MODE=insert). Prints one `RESULT {json}` line and exits.
import { randomUUID } from "node:crypto";
import { Queue, Worker } from "bullmq";
import { createDb } from "../../src/platform/db.js";
import { createProducerRedis, createWorkerRedis } from "../../src/platform/redis.js";

const mode = process.env.MODE === "insert" ? "insert" : "noop";
const jobs = Number(process.env.JOBS ?? 10_000);
const concurrency = Number(process.env.CONCURRENCY ?? 100);
const redisUrl = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
const name = `baseline-${mode}`;
const prefix = `{${process.env.QUEUE_PREFIX}-${name}}`;
// The same pool size as meterline's worker (src/deps.ts).
const db = mode === "insert" ? createDb(process.env.DATABASE_URL!, { max: 20 }) : undefined;
await db?.raw(
  "CREATE TABLE IF NOT EXISTS bench_baseline_inserts (id text PRIMARY KEY, created_at timestamptz NOT NULL DEFAULT now())",
);

const producer = createProducerRedis(redisUrl);
const queue = new Queue(name, { connection: producer, prefix });
const addStart = performance.now();
for (let i = 0; i < jobs; i += 1000) {
  const batch = Array.from({ length: Math.min(1000, jobs - i) }, () => ({
    name: "job",
    data: { id: randomUUID(), customerId: "cust_bench", tokens: 42 },
    opts: { removeOnComplete: { age: 86_400, count: 100_000 } },
  }));
  await queue.addBulk(batch);
}
const addSeconds = (performance.now() - addStart) / 1000;

let done = 0;
let finish: () => void;
const finished = new Promise<void>((resolve) => (finish = resolve));
const connection = createWorkerRedis(redisUrl);
const worker = new Worker(
  name,
  async (job) => {
    if (db) {
      await db.raw("INSERT INTO bench_baseline_inserts (id) VALUES (?) ON CONFLICT (id) DO NOTHING", [
        job.data.id,
      ]);
    }
  },
  { connection, prefix, concurrency, autorun: false },
);
worker.on("completed", () => {
  if (++done === jobs) finish();
});
worker.on("failed", (_job, err) => console.error(err));
await worker.waitUntilReady();
const start = performance.now();
void worker.run();
await finished;
const seconds = (performance.now() - start) / 1000;
console.log(
  `RESULT ${JSON.stringify({ mode, jobs, jobsPerSecond: jobs / seconds, addPerSecond: jobs / addSeconds })}`,
);

await worker.close();
await queue.close();
connection.disconnect();
producer.disconnect();
await db?.destroy();
process.exit(0);
