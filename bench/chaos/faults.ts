import type { Child } from "../lib/children.js";
import type { RedisServerHandle } from "../../test/helpers/redis-server.js";
import type { PrivatePostgres } from "./services.js";

export type Fault = "kill-worker" | "kill-redis" | "restart-postgres";
export const FAULTS: readonly Fault[] = ["kill-worker", "kill-redis", "restart-postgres"];

export interface FaultTargets {
  /** The worker processes; a killed one is replaced in its slot by a fresh process. */
  workers: Child[];
  startWorker(slot: number): Promise<Child>;
  redis: RedisServerHandle;
  postgres: PrivatePostgres;
  log(msg: string): void;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
// How long a killed service stays down: long enough for every process to notice and retry.
const DOWNTIME_MS = 1_500;

/**
 * Injects one fault and heals it: a worker `kill -9`ed mid-job and a new one started in its place;
 * Redis `kill -9`ed and restarted from its AOF; Postgres shut down fast and started again.
 */
export async function inject(fault: Fault, targets: FaultTargets, round: number): Promise<void> {
  const started = Date.now();
  if (fault === "kill-worker") {
    const slot = round % targets.workers.length;
    const victim = targets.workers[slot]!;
    await victim.kill();
    await sleep(DOWNTIME_MS);
    targets.workers[slot] = await targets.startWorker(slot);
    targets.log(
      `fault: kill -9 ${victim.name} (pid ${victim.pid}); restarted as ${targets.workers[slot]!.name}`,
    );
  } else if (fault === "kill-redis") {
    await targets.redis.kill();
    await sleep(DOWNTIME_MS);
    await targets.redis.restart();
    targets.log(`fault: kill -9 redis-server; restarted from its AOF`);
  } else {
    await targets.postgres.restart();
    targets.log(`fault: Postgres restarted (fast shutdown, start)`);
  }
  targets.log(`fault: ${fault} healed in ${Date.now() - started} ms`);
}

/**
 * Cycles through every fault, one every `everyMs`, until `stop` resolves (the load is done); with
 * `once`, injects each fault exactly once whether or not the load is still running, so a short run
 * still meets every fault. Resolves with the faults injected, in order.
 */
export async function runFaults(
  targets: FaultTargets,
  opts: { everyMs: number; once: boolean; stop: Promise<unknown> },
): Promise<Fault[]> {
  const done: Fault[] = [];
  let stopped = false;
  if (!opts.once) void opts.stop.finally(() => (stopped = true));
  for (let round = 0; !stopped; round++) {
    await (opts.once ? sleep(opts.everyMs) : Promise.race([sleep(opts.everyMs), opts.stop]));
    if (stopped) break;
    const fault = FAULTS[round % FAULTS.length]!;
    await inject(fault, targets, Math.floor(round / FAULTS.length));
    done.push(fault);
    if (opts.once && done.length === FAULTS.length) break;
  }
  return done;
}
