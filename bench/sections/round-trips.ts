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
 * TCP read the proxy sees is one round trip (a pipeline counts once, its commands apart); then as
 * many at b1's connections, in the detail. The processes' background work (schedulers, stalled-job
 * checks) in the same seconds is included.
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
    const send = async (amount: number, connections: number) => {
      const r = await autocannon({
        url: `${web.url}/v1/chat/completions`,
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${env.customer.key}` },
        body: CHAT_BODY,
        connections,
        amount,
      });
      return r["2xx"];
    };
    const counted = async (amount: number, connections: number) => {
      await control("POST");
      const ok = await send(amount, connections);
      if (ok === 0) throw new Error("round trips: no chat answered 2xx");
      return { ok, counts: (await (await control("GET")).json()) as Counts };
    };
    await send(Math.ceil(chats / 10), 1); // connections, pools, caches, JIT
    ctx.log(`b. round trips: ${chats} chats one at a time, then ${options.connections} at a time`);
    const alone = await counted(chats, 1);
    // Under load requests share round trips (batched fetches, event reads, group commit): the
    // counts at b1's connections say how much; reads coalesce there, so Redis counts commands.
    const loaded = await counted(chats, options.connections);
    const row = (id: string, label: string, service: string) => {
      const one = perChat(alone.counts, service, alone.ok, "trips");
      const many = perChat(loaded.counts, service, loaded.ok, service === "redis" ? "commands" : "trips");
      const unit = service === "redis" ? "commands" : "round trips";
      return {
        id,
        label: `${label} (one at a time)`,
        value: one.total,
        unit: "",
        detail: `${alone.ok} chats: ${one.text}; at ${options.connections} connections ${many.total.toFixed(2)} ${unit} per chat: ${many.text}`,
      };
    };
    return [
      row("b4", "Redis round trips per sync chat", "redis"),
      row("b5", "Postgres round trips per sync chat", "postgres"),
    ];
  } finally {
    await Promise.all([web.child.stop(), worker.stop()]);
    await proxy.stop();
  }
}

/** Requests per chat to one service, in all and by process and command ("web 4.00: XREAD 3.00, …"). */
function perChat(counts: Counts, service: string, chats: number, what: "trips" | "commands") {
  let total = 0;
  const parts: string[] = [];
  for (const proc of ["web", "worker"]) {
    const c = counts[`${proc} ${service}`];
    if (!c) continue;
    const byCommand = Object.entries(c.commands).sort((a, b) => b[1] - a[1]);
    const n = what === "trips" ? c.trips : byCommand.reduce((sum, [, k]) => sum + k, 0);
    total += n / chats;
    const shown = byCommand
      .filter(([, k]) => k / chats >= SHOWN_PER_CHAT)
      .map(([name, k]) => `${name} ${(k / chats).toFixed(2)}`);
    parts.push(`${proc} ${(n / chats).toFixed(2)}${shown.length ? `: ${shown.join(", ")}` : ""}`);
  }
  return { total, text: parts.join("; ") };
}
