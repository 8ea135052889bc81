import { freePort } from "../lib/children.js";
import type { Section } from "../lib/context.js";
import { runLoad } from "../lib/load.js";
import { CHAT_BODY } from "../lib/stack.js";
import type { Row } from "../lib/table.js";
import { ms } from "../lib/context.js";

const JSON_HEADERS = { "content-type": "application/json" };

/** B1–B5: what Express, BullMQ, Postgres and the emulator do on this machine, in this run. */
export const baselines: Section = async (ctx) => {
  const { options, stack, env } = ctx;
  const load = (url: string, headers: Record<string, string> = JSON_HEADERS) =>
    runLoad(
      { url, method: "POST", headers, body: CHAT_BODY, connections: options.connections },
      options.duration,
      options.warmup,
    );
  const rows: Row[] = [];

  const port = await freePort();
  const bare = stack.children.start("bare-server", "bench/procs/bare-server.ts", {
    PORT: String(port),
    REDIS_URL: env.redisUrl,
    QUEUE_PREFIX: env.queuePrefix,
  });
  await bare.waitForLog(/READY/);
  ctx.log("B1 bare Express endpoint");
  const b1 = await load(`http://127.0.0.1:${port}/bare`);
  rows.push(httpRow("B1", "bare Express endpoint", b1));
  ctx.log("B2 Express endpoint + one queue.add");
  const b2 = await load(`http://127.0.0.1:${port}/enqueue`);
  rows.push(httpRow("B2", "Express endpoint + one queue.add", b2));
  await bare.stop();

  for (const mode of ["noop", "insert"] as const) {
    ctx.log(`B${mode === "noop" ? 3 : 4} BullMQ ${mode} jobs`);
    const child = stack.children.start(`baseline-${mode}`, "bench/procs/job-baseline.ts", {
      MODE: mode,
      JOBS: String(options.jobs),
      CONCURRENCY: "100",
      REDIS_URL: env.redisUrl,
      DATABASE_URL: env.databaseUrl,
      QUEUE_PREFIX: env.queuePrefix,
    });
    const line = await child.waitForLog(/^RESULT /, 60_000 + options.jobs * 2);
    const result = JSON.parse(line.slice("RESULT ".length)) as {
      jobsPerSecond: number;
      addPerSecond: number;
    };
    await child.stop();
    rows.push({
      id: mode === "noop" ? "B3" : "B4",
      label:
        mode === "noop" ? "BullMQ no-op jobs (concurrency 100)" : "BullMQ jobs, one unique-key INSERT each",
      value: result.jobsPerSecond,
      unit: "jobs/s",
      detail: `addBulk ${Math.round(result.addPerSecond).toLocaleString("en-US")} jobs/s`,
    });
  }

  ctx.log("B5 direct call to the OpenAI emulator");
  const emulator = await stack.emulator();
  const b5 = await load(`${emulator.url}/chat/completions`, {
    ...JSON_HEADERS,
    authorization: "Bearer sk-bench",
  });
  rows.push(httpRow("B5", "direct call to the OpenAI emulator (0 ms)", b5));
  return rows;
};

export function httpRow(
  id: string,
  label: string,
  r: { rps: number; p50: number; p99: number; failures: number },
): Row {
  const failures = r.failures > 0 ? `, ${r.failures} failed` : "";
  return { id, label, value: r.rps, unit: "req/s", detail: `p50 ${ms(r.p50)}, p99 ${ms(r.p99)}${failures}` };
}
