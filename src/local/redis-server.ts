// Spawns and supervises a private `redis-server` child process: `npm start` runs one when no Redis
// is reachable (test/helpers/redis-server.ts builds kill and restart on top of this, for tests).
import { spawn, type ChildProcess } from "node:child_process";
import { closeSync, mkdirSync, openSync } from "node:fs";
import net from "node:net";
import path from "node:path";
import { readFile } from "node:fs/promises";
import { findFreePort } from "./ports.js";

/** One redis-server process: once it has exited, start another on the same port and dir. */
export interface RedisServerHandle {
  url: string;
  port: number;
  dir: string;
  /** pid of the child, undefined once it has exited. */
  readonly pid: number | undefined;
  /** Resolves once the process has exited, however it ended. */
  readonly exited: Promise<void>;
  /** SIGTERM (Redis flushes the AOF and exits cleanly); resolves once the process has exited. */
  stop(): Promise<void>;
}

export interface StartRedisServerOptions {
  /** Working directory for the AOF / RDB files and `redis.log`. Created if missing. */
  dir: string;
  /** 0 or undefined → pick a free port. */
  port?: number;
  /** Default true. */
  appendonly?: boolean;
  /** Binary to run, default `redis-server` from PATH. */
  binary?: string;
  /** More redis-server arguments, after the defaults (a cluster node's `--cluster-enabled yes` …). */
  extraArgs?: string[];
}

const HOST = "127.0.0.1";
const READY_TIMEOUT_MS = 10_000;
const STOP_TIMEOUT_MS = 10_000;

/**
 * One raw RESP `PING` over a fresh socket. Resolves "pong" on `+PONG`, "loading" while Redis is still
 * replaying its AOF (`-LOADING ...`), "down" on any connection error / other reply / timeout.
 */
async function pingRedis(port: number, host = HOST, timeoutMs = 1000): Promise<"pong" | "loading" | "down"> {
  return new Promise((resolve) => {
    let buf = "";
    let settled = false;
    const socket = net.connect({ port, host });
    const done = (r: "pong" | "loading" | "down") => {
      if (settled) return;
      settled = true;
      socket.destroy();
      resolve(r);
    };
    socket.setTimeout(timeoutMs, () => done("down"));
    socket.once("error", () => done("down"));
    socket.once("close", () => done("down"));
    socket.once("connect", () => socket.write("PING\r\n"));
    socket.on("data", (chunk: Buffer) => {
      buf += chunk.toString("latin1");
      const nl = buf.indexOf("\r\n");
      if (nl < 0) return;
      const line = buf.slice(0, nl);
      if (line === "+PONG") done("pong");
      else if (line.startsWith("-LOADING")) done("loading");
      else done("down");
    });
  });
}

async function readLogTail(logFile: string, lines = 20): Promise<string> {
  try {
    const text = await readFile(logFile, "utf8");
    return text.trimEnd().split("\n").slice(-lines).join("\n");
  } catch {
    return "";
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Spawn redis-server on `port` (default: a free one) with its files in `dir`; resolves once it answers PING. */
export async function startRedisServer(opts: StartRedisServerOptions): Promise<RedisServerHandle> {
  const dir = path.resolve(opts.dir);
  mkdirSync(dir, { recursive: true });
  const port = opts.port ? opts.port : await findFreePort();
  const binary = opts.binary ?? "redis-server";
  const logFile = path.join(dir, "redis.log");
  const args = [
    "--port",
    String(port),
    "--bind",
    HOST,
    "--dir",
    dir,
    "--appendonly",
    opts.appendonly === false ? "no" : "yes",
    "--appendfsync",
    "everysec",
    "--maxmemory-policy",
    "noeviction",
    "--save",
    "",
    "--daemonize",
    "no",
    "--protected-mode",
    "yes",
    "--pidfile",
    path.join(dir, "redis.pid"),
    ...(opts.extraArgs ?? []),
  ];

  const fd = openSync(logFile, "a");
  let proc: ChildProcess;
  try {
    proc = spawn(binary, args, { cwd: dir, stdio: ["ignore", fd, fd] });
  } finally {
    closeSync(fd); // the child has its own copy
  }

  // Children must not outlive the parent. ('exit' handlers must be synchronous: just signal. SIGTERM
  // lets Redis flush the AOF; it does not need us around to finish.)
  const onParentExit = () => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill("SIGTERM");
  };
  process.once("exit", onParentExit);

  let exitInfo: { code: number | null; signal: NodeJS.Signals | null; error?: Error } | undefined;
  const exited = new Promise<void>((resolve) => {
    const finish = (info: NonNullable<typeof exitInfo>) => {
      if (exitInfo) return;
      exitInfo = info;
      process.removeListener("exit", onParentExit);
      resolve();
    };
    proc.once("exit", (code, signal) => finish({ code, signal }));
    // 'error' fires instead of 'exit' when the binary cannot be spawned at all (ENOENT, EACCES).
    proc.once("error", (error) => finish({ code: null, signal: null, error }));
  });

  const stop = async (signal: NodeJS.Signals = "SIGTERM"): Promise<void> => {
    if (exitInfo) return;
    proc.kill(signal);
    const timer = new Promise<"timeout">((r) => setTimeout(() => r("timeout"), STOP_TIMEOUT_MS).unref());
    if ((await Promise.race([exited.then(() => "exited" as const), timer])) === "timeout") {
      proc.kill("SIGKILL");
      await exited;
    }
  };

  const deadline = Date.now() + READY_TIMEOUT_MS;
  let delay = 20;
  for (;;) {
    if (exitInfo) {
      const err = exitInfo.error as NodeJS.ErrnoException | undefined;
      if (err?.code === "ENOENT") {
        throw new Error(
          `redis-server not found: could not run "${binary}" (is Redis installed and on PATH?)`,
          {
            cause: err,
          },
        );
      }
      if (err) throw new Error(`could not start ${binary}: ${err.message}`, { cause: err });
      const tail = await readLogTail(logFile);
      throw new Error(
        `redis-server exited before becoming ready (code ${exitInfo.code ?? "null"}, signal ${exitInfo.signal ?? "null"}) on port ${port}, dir ${dir}` +
          (tail ? `\n--- ${logFile} (tail) ---\n${tail}` : ""),
      );
    }
    // Only trust a PONG once our child is known to be alive (the port could belong to someone else).
    if (proc.pid !== undefined && (await pingRedis(port)) === "pong" && !exitInfo) break;
    if (Date.now() > deadline) {
      await stop("SIGKILL");
      const tail = await readLogTail(logFile);
      throw new Error(
        `redis-server on port ${port} did not answer PING within ${READY_TIMEOUT_MS} ms` +
          (tail ? `\n--- ${logFile} (tail) ---\n${tail}` : ""),
      );
    }
    await sleep(delay);
    delay = Math.min(delay * 2, 200);
  }

  return {
    url: `redis://${HOST}:${port}`,
    port,
    dir,
    get pid() {
      return exitInfo ? undefined : proc.pid;
    },
    exited,
    stop: () => stop(),
  };
}
