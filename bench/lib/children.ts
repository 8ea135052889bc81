import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { closeSync, openSync, readFileSync } from "node:fs";
import { createServer } from "node:net";
import path from "node:path";

export interface Child {
  name: string;
  pid: number;
  logFile: string;
  readonly exited: boolean;
  /** Resolves with the first log line matching `pattern`; rejects if the process exits first. */
  waitForLog(pattern: RegExp, timeoutMs?: number): Promise<string>;
  /** Peak resident set size so far (VmHWM), in MB. */
  peakRssMb(): number;
  /** SIGTERM, then SIGKILL after a grace period; resolves when the process is gone. */
  stop(): Promise<void>;
  /** SIGKILL at once (a crash: nothing is cleaned up); resolves when the process is gone. */
  kill(): Promise<void>;
}

export interface Children {
  /** Runs a script (compiled, or through tsx) with its own environment; output goes to a log file. */
  start(name: string, script: string, env: Record<string, string>): Child;
  /** Runs any program (a peer under comparison, say) the same way: own environment, log file. */
  exec(name: string, command: string, args: string[], env: Record<string, string>, cwd?: string): Child;
  /** The children still running. */
  running(): Child[];
  stopAll(): Promise<void>;
}

const ROOT = path.resolve(import.meta.dirname, "../..");

/**
 * The processes under test. Each runs in its own OS process so the load generator (this process)
 * never shares an event loop with what it measures.
 */
export function createChildren(logDir: string, cpuProfDir?: string, compiledRoot?: string): Children {
  const running = new Set<Child>();
  const exec: Children["exec"] = (name, command, args, env, cwd = ROOT) => {
    const logFile = path.join(logDir, `${name}.log`);
    const fd = openSync(logFile, "a");
    const proc = spawn(command, args, {
      cwd,
      env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "", ...env },
      stdio: ["ignore", fd, fd],
    });
    closeSync(fd);
    const child = wrap(name, proc, logFile);
    running.add(child);
    proc.once("exit", () => running.delete(child));
    return child;
  };
  return {
    start(name, script, env) {
      const args = compiledRoot ? [] : ["--import", "tsx"];
      // One directory per process: the main thread and tsx's loader thread each write a profile.
      if (cpuProfDir) args.push("--cpu-prof", "--cpu-prof-dir", path.join(cpuProfDir, name));
      const entry = compiledRoot
        ? path.join(compiledRoot, script.replace(/\.ts$/, ".js"))
        : path.join(ROOT, script);
      return exec(name, process.execPath, [...args, entry], env);
    },
    exec,
    running: () => [...running].filter((c) => !c.exited),
    async stopAll() {
      await Promise.all([...running].map((c) => c.stop()));
    },
  };
}

function wrap(name: string, proc: ChildProcess, logFile: string): Child {
  let exited = proc.exitCode !== null;
  const exit = new Promise<void>((resolve) => proc.once("exit", () => resolve()));
  void exit.then(() => (exited = true));
  const log = () => {
    try {
      return readFileSync(logFile, "utf8");
    } catch {
      return "";
    }
  };
  return {
    name,
    pid: proc.pid ?? -1,
    logFile,
    get exited() {
      return exited;
    },
    async waitForLog(pattern, timeoutMs = 30_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const line = log()
          .split("\n")
          .find((l) => pattern.test(l));
        if (line) return line;
        if (exited)
          throw new Error(`${name} exited before logging ${pattern}; see ${logFile}:\n${tail(log())}`);
        if (Date.now() > deadline)
          throw new Error(`${name}: no ${pattern} after ${timeoutMs} ms; see ${logFile}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    peakRssMb() {
      const status = readFileSync(`/proc/${proc.pid}/status`, "utf8");
      const kb = Number(status.match(/^VmHWM:\s+(\d+)\s+kB/m)?.[1] ?? NaN);
      return kb / 1024;
    },
    async stop() {
      if (exited) return;
      proc.kill("SIGTERM");
      const killer = setTimeout(() => proc.kill("SIGKILL"), 15_000);
      await exit;
      clearTimeout(killer);
    },
    async kill() {
      if (exited) return;
      proc.kill("SIGKILL");
      await exit;
    },
  };
}

const tail = (text: string) => text.split("\n").slice(-15).join("\n");

/** A free loopback port (tiny race between close and the child's listen; fine on loopback). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : 0;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** Polls an HTTP URL until it answers (any status), so a child is ready before load starts. */
export async function waitForHttp(url: string, child: Child, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await fetch(url);
      return;
    } catch {
      if (child.exited) throw new Error(`${child.name} exited; see ${child.logFile}`);
      if (Date.now() > deadline) throw new Error(`${child.name} did not answer ${url}; see ${child.logFile}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

/** Compiles src/, jobs/ and the bench processes to `.bench-dist/` so they run as production does. */
export function compileForBench(): string {
  const out = path.join(ROOT, ".bench-dist");
  execFileSync(
    process.execPath,
    [path.join(ROOT, "node_modules/typescript/bin/tsc"), "-p", "tsconfig.bench.json", "--outDir", out],
    {
      cwd: ROOT,
      stdio: "inherit",
    },
  );
  return out;
}
