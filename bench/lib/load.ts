import { Agent, request } from "node:http";
import autocannon, { type Options } from "autocannon";

export interface LoadResult {
  /** 2xx responses per second. */
  rps: number;
  /** 2xx responses in the measured run. */
  completed: number;
  p50: number;
  p99: number;
  /** Non-2xx responses, errors and timeouts: a row with failures is not a throughput figure. */
  failures: number;
  statuses: Record<string, number>;
}

/** A throughput row needs accepted requests: with none (a 404, say) the section fails, saying why. */
export function requireAccepted(r: LoadResult, what: string): void {
  if (r.rps === 0) throw new Error(`${what} accepted no request: ${JSON.stringify(r.statuses)}`);
}

export type LoadSpec = Omit<Options, "duration">;

/**
 * Closed-loop load with autocannon (raw sockets, keep-alive): an unmeasured warmup, then the
 * measured run. Latencies have 1 ms resolution.
 */
export async function runLoad(spec: LoadSpec, duration: number, warmup: number): Promise<LoadResult> {
  if (warmup > 0) await autocannon({ ...spec, duration: warmup });
  const r = await autocannon({ ...spec, duration });
  const statuses = Object.fromEntries(Object.entries(r.statusCodeStats).map(([k, v]) => [k, v.count]));
  return {
    rps: r["2xx"] / r.duration,
    completed: r["2xx"],
    p50: r.latency.p50,
    p99: r.latency.p99,
    failures: r.non2xx + r.errors + r.timeouts,
    statuses,
  };
}

export interface PacedResult {
  rps: number;
  p50: number;
  p99: number;
  failures: number;
}

/**
 * Moderate, paced load with microsecond latencies: `connections` keep-alive clients, each sending
 * its next request on a fixed schedule (so the load is the same for whatever is measured).
 */
export async function runPaced(
  target: { url: string; headers: Record<string, string>; body: string },
  opts: { connections: number; rate: number; seconds: number; warmup: number },
): Promise<PacedResult> {
  const agent = new Agent({ keepAlive: true, maxSockets: opts.connections });
  const once = () =>
    new Promise<{ ms: number; ok: boolean }>((resolve) => {
      const start = process.hrtime.bigint();
      const req = request(target.url, { method: "POST", agent, headers: target.headers }, (res) => {
        res.resume();
        res.once("end", () =>
          resolve({
            ms: Number(process.hrtime.bigint() - start) / 1e6,
            ok: (res.statusCode ?? 0) >= 200 && (res.statusCode ?? 0) < 300,
          }),
        );
      });
      req.once("error", () => resolve({ ms: 0, ok: false }));
      req.end(target.body);
    });
  const run = async (seconds: number) => {
    const latencies: number[] = [];
    let failures = 0;
    const interval = (1000 * opts.connections) / opts.rate;
    const until = Date.now() + seconds * 1000;
    const started = Date.now();
    await Promise.all(
      Array.from({ length: opts.connections }, async (_, i) => {
        let next = started + (i * interval) / opts.connections;
        while (next < until) {
          const wait = next - Date.now();
          if (wait > 0) await new Promise((r) => setTimeout(r, wait));
          const { ms, ok } = await once();
          if (ok) latencies.push(ms);
          else failures++;
          next += interval;
        }
      }),
    );
    return { latencies, failures, elapsed: (Date.now() - started) / 1000 };
  };
  try {
    if (opts.warmup > 0) await run(opts.warmup);
    const { latencies, failures, elapsed } = await run(opts.seconds);
    latencies.sort((a, b) => a - b);
    return {
      rps: latencies.length / elapsed,
      p50: percentile(latencies, 0.5),
      p99: percentile(latencies, 0.99),
      failures,
    };
  } finally {
    agent.destroy();
  }
}

export function percentile(sorted: number[], q: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]!;
}
