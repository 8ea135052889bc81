import type { FailNextOptions, FailStatus, StripeFaults } from "./types.js";
import { mulberry32 } from "./util.js";

export interface FaultDecision {
  latencyMs: number;
  kind?: FailStatus;
  message?: string;
}

interface Pending {
  remaining: number;
  status: FailStatus;
  method?: string;
  pathPrefix?: string;
  message?: string;
}

const randomSeed = (): number => Math.floor(Math.random() * 2 ** 32);

/** Decides, per API call, the added latency and the injected failure (failNext first, then random shares). */
export class FaultEngine {
  private faults: StripeFaults = {};
  private rng = mulberry32(randomSeed());
  private pending: Pending[] = [];

  set(f: StripeFaults): void {
    for (const k of ["rate500", "rate429", "rateDrop", "rateDropAfter"] as const) {
      const v = f[k];
      if (v !== undefined && !(v >= 0 && v <= 1)) throw new Error(`${k} must be within 0..1`);
    }
    this.faults = { ...f };
    this.rng = mulberry32(f.seed ?? randomSeed());
  }

  failNext(n: number, status: FailStatus, opts: FailNextOptions = {}): void {
    if (!Number.isInteger(n) || n < 1) return;
    if (![500, 429, 400, "drop", "drop-after"].includes(status))
      throw new Error(`Unknown fail status: ${status}`);
    const m = opts.path === undefined ? null : /^(GET|POST|DELETE)\s+(.*)$/i.exec(opts.path);
    this.pending.push({
      remaining: n,
      status,
      method: m?.[1]?.toUpperCase(),
      pathPrefix: m ? m[2] : opts.path,
      message: opts.message,
    });
  }

  clear(): void {
    this.faults = {};
    this.pending = [];
  }

  decide(method: string, path: string): FaultDecision {
    const inScope = (this.faults.paths ?? ["/v1/", "/v2/"]).some((p) => path.startsWith(p));
    let latencyMs = 0;
    const slow = this.faults.slowMs;
    if (inScope && slow !== undefined) {
      latencyMs = Array.isArray(slow) ? slow[0] + this.rng() * Math.max(0, slow[1] - slow[0]) : slow;
    }
    const i = this.pending.findIndex(
      (f) =>
        (f.method === undefined || f.method === method) &&
        (f.pathPrefix === undefined || path.startsWith(f.pathPrefix)),
    );
    const hit = this.pending[i];
    if (hit) {
      hit.remaining--;
      if (hit.remaining <= 0) this.pending.splice(i, 1);
      return { latencyMs, kind: hit.status, message: hit.message };
    }
    if (!inScope) return { latencyMs };
    const { rate500 = 0, rate429 = 0, rateDrop = 0, rateDropAfter = 0 } = this.faults;
    if (rate500 + rate429 + rateDrop + rateDropAfter === 0) return { latencyMs };
    const r = this.rng();
    if (r < rate500) return { latencyMs, kind: 500 };
    if (r < rate500 + rate429) return { latencyMs, kind: 429 };
    if (r < rate500 + rate429 + rateDrop) return { latencyMs, kind: "drop" };
    if (r < rate500 + rate429 + rateDrop + rateDropAfter) return { latencyMs, kind: "drop-after" };
    return { latencyMs };
  }
}
