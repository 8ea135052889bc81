import { existsSync, readdirSync, readFileSync } from "node:fs";

// Linux reports CPU time in /proc in USER_HZ ticks, which is 100 on every mainstream build.
const TICK_S = 0.01;

/** CPU seconds (user + system, every thread) of a process, or undefined once it is gone. */
export function cpuSeconds(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) * TICK_S;
  } catch {
    return undefined;
  }
}

export function pidsNamed(names: readonly string[]): Array<{ name: string; pid: number }> {
  const found: Array<{ name: string; pid: number }> = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const comm = readFileSync(`/proc/${entry}/comm`, "utf8").trim();
      if (names.includes(comm)) found.push({ name: comm, pid: Number(entry) });
    } catch {
      // The process ended between readdir and read.
    }
  }
  return found;
}

export interface CpuSplit {
  /** Starts counting CPU for a section (and ends the previous one). */
  section(name: string): void;
  /** Ends the current section and stops sampling. */
  stop(): void;
  /** A markdown table: average cores busy per process during each section, or "" off Linux. */
  render(): string;
}

/**
 * Where the machine's CPU goes during each section: the processes under test, the `services` found
 * by process name (every `postgres` process, say) and the bench process itself (the load
 * generator), sampled from /proc every `intervalMs`. A process that exits loses at most its last
 * interval.
 */
export function createCpuSplit(
  processes: () => Array<{ name: string; pid: number }>,
  services: readonly string[] = ["redis-server", "postgres"],
  intervalMs = 250,
): CpuSplit {
  if (!existsSync("/proc/self/stat")) return { section() {}, stop() {}, render: () => "" };
  const sections: Array<{ name: string; started: number; ended?: number; cpu: Map<string, number> }> = [];
  const last = new Map<number, number>();
  let found: Array<{ name: string; pid: number }> = [];
  let samples = 0;
  let timer: NodeJS.Timeout | undefined;

  const sample = () => {
    const current = sections.at(-1);
    if (samples++ % 4 === 0) found = pidsNamed(services);
    const watched = [...processes(), ...found, { name: "bench (load)", pid: process.pid }];
    for (const { name, pid } of watched) {
      const now = cpuSeconds(pid);
      if (now === undefined) continue;
      const before = last.get(pid);
      last.set(pid, now);
      if (before !== undefined && current && current.ended === undefined)
        current.cpu.set(name, (current.cpu.get(name) ?? 0) + (now - before));
    }
  };
  const end = () => {
    const current = sections.at(-1);
    if (current && current.ended === undefined) {
      sample();
      current.ended = performance.now();
    }
  };

  return {
    section(name) {
      end();
      sample();
      sections.push({ name, started: performance.now(), cpu: new Map() });
      timer ??= setInterval(sample, intervalMs).unref();
    },
    stop() {
      end();
      clearInterval(timer);
      timer = undefined;
    },
    render() {
      if (sections.length === 0) return "";
      const names = [...new Set(sections.flatMap((s) => [...s.cpu.keys()]))];
      const cell = (n: number) => n.toFixed(2);
      const rows = sections.map((s) => {
        const wall = ((s.ended ?? performance.now()) - s.started) / 1000;
        const cores = names.map((n) => (s.cpu.get(n) ?? 0) / wall);
        const total = cores.reduce((a, b) => a + b, 0);
        return `| ${s.name} | ${wall.toFixed(1)} | ${cores.map(cell).join(" | ")} | ${cell(total)} |`;
      });
      return [
        `| section | wall s | ${names.join(" | ")} | all |`,
        `|---|---|${names.map(() => "---|").join("")}---|`,
        ...rows,
      ].join("\n");
    },
  };
}

/**
 * Starts counting the CPU of these processes; the returned function gives the CPU seconds each name
 * spent since (processes sharing a name are summed; one that has exited by then counts nothing).
 */
export function cpuSince(processes: Array<{ name: string; pid: number }>): () => Map<string, number> {
  const start = processes.map((p) => ({ ...p, cpu: cpuSeconds(p.pid) }));
  return () => {
    const spent = new Map<string, number>();
    for (const p of start) {
      if (p.cpu === undefined) continue;
      const now = cpuSeconds(p.pid) ?? p.cpu;
      spent.set(p.name, (spent.get(p.name) ?? 0) + now - p.cpu);
    }
    return spent;
  };
}

/** "web 0.61, worker 0.82, redis 0.20 ms": a per-name split of CPU seconds over `n` requests. */
export function perRequestSplit(spent: Map<string, number>, n: number): string {
  return [...spent]
    .filter(([, s]) => s > 0)
    .map(([name, s]) => `${name} ${((s * 1000) / n).toFixed(2)}`)
    .join(", ");
}
