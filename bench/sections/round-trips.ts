import autocannon from "autocannon";
import type { BenchContext } from "../lib/context.js";
import { CHAT_BODY } from "../lib/stack.js";
import type { Row } from "../lib/table.js";

type Counts = Record<string, { trips: number; commands: Record<string, number> }>;

/** Commands whose share per chat is below this are left out of a row's breakdown. */
const SHOWN_PER_CHAT = 0.05;

/**
 * (b4, b5) Redis and Postgres round trips per synchronous chat. A web and a worker process of their
 * own (their own queue prefix, the run's database and Redis) talk to Redis and Postgres through
 * bench/procs/counting-proxy.ts, which names every request; chats are sent one at a time, so each
 * TCP read the proxy sees is one round trip (a pipeline counts once, its commands apart). The
 * processes' background work (schedulers, stalled-job checks) in the same seconds is included.
 */
export async function roundTripRows(ctx: BenchContext): Promise<Row[]> {
  const { stack, env, options } = ctx;
  const chats = Math.max(25, Math.round(options.duration * 50));
  const redisTarget = new URL(env.redisUrl);
  const routes = ["web", "worker"].flatMap((proc) => [
    { name: `${proc} redis`, target: `${redisTarget.hostname}:${redisTarget.port}`, protocol: "redis" },
    { name: `${proc} postgres`, target: "127.0.0.1:5432", protocol: "postgres" },
  ]);
  const proxy = stack.children.start("counting-proxy", "bench/procs/counting-proxy.ts", {
    ROUTES: JSON.stringify(routes),
  });
  const ready = JSON.parse((await proxy.waitForLog(/^READY /)).slice("READY ".length)) as {
    ports: Record<string, number>;
    control: number;
  };
  const through = (proc: string) => ({
    REDIS_URL: `redis://127.0.0.1:${ready.ports[`${proc} redis`]}`,
    DATABASE_URL: `postgres://postgres@127.0.0.1:${ready.ports[`${proc} postgres`]}/${env.databaseName}`,
    // Its own queues: the run's default worker must not take these chats, nor this one the run's.
    QUEUE_PREFIX: `${env.queuePrefix}rt`,
  });
  const control = (method: string) =>
    fetch(`http://127.0.0.1:${ready.control}/${method === "POST" ? "reset" : "counts"}`, { method });
  const [web, worker] = await Promise.all([
    stack.startWeb("web-counted", through("web")),
    stack.startWorker("worker-counted", through("worker")),
  ]);
  try {
    const send = async (amount: number) => {
      const r = await autocannon({
        url: `${web.url}/v1/chat/completions`,
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${env.customer.key}` },
        body: CHAT_BODY,
        connections: 1,
        amount,
      });
      return r["2xx"];
    };
    await send(Math.ceil(chats / 10)); // connections, pools, caches, JIT
    await control("POST");
    ctx.log(`b. round trips: ${chats} chats one at a time through the counting proxy`);
    const ok = await send(chats);
    const counts = (await (await control("GET")).json()) as Counts;
    if (ok === 0) throw new Error("round trips: no chat answered 2xx");
    return [
      tripsRow("b4", "Redis round trips per sync chat", "redis", counts, ok),
      tripsRow("b5", "Postgres round trips per sync chat", "postgres", counts, ok),
    ];
  } finally {
    await Promise.all([web.child.stop(), worker.stop()]);
    await proxy.stop();
  }
}

function tripsRow(id: string, label: string, service: string, counts: Counts, chats: number): Row {
  let trips = 0;
  let commands = 0;
  const parts: string[] = [];
  for (const proc of ["web", "worker"]) {
    const c = counts[`${proc} ${service}`];
    if (!c) continue;
    trips += c.trips;
    const byCommand = Object.entries(c.commands).sort((a, b) => b[1] - a[1]);
    commands += byCommand.reduce((sum, [, n]) => sum + n, 0);
    const shown = byCommand
      .filter(([, n]) => n / chats >= SHOWN_PER_CHAT)
      .map(([name, n]) => `${name} ${(n / chats).toFixed(2)}`);
    parts.push(`${proc} ${(c.trips / chats).toFixed(2)}: ${shown.join(", ")}`);
  }
  const perCommand = service === "redis" ? `, ${(commands / chats).toFixed(2)} commands; ` : "; ";
  return {
    id,
    label: `${label} (one at a time)`,
    value: trips / chats,
    unit: "",
    detail: `${chats} chats${perCommand}${parts.join("; ")}`,
  };
}
