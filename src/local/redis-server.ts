// Spawns and supervises a private `redis-server` child process.
//
// Used by the local stack (`npm start`) when no Redis is reachable, and by tests that need a Redis they
// can kill and restart (to exercise reconnects and AOF recovery) without touching the shared instance.
import { spawn, type ChildProcess } from "node:child_process";
import { closeSync, mkdirSync, openSync } from "node:fs";
import net from "node:net";
import path from "node:path";
import { readFile } from "node:fs/promises";

export interface RedisServerHandle {
  url: string;
  port: number;
  dir: string;
  /** pid of the current child, undefined while it is not running. */
  readonly pid: number | undefined;
  /** SIGTERM (Redis flushes the AOF and exits cleanly); resolves once the process has exited. */
  stop(): Promise<void>;
  /** SIGKILL (simulates a crash); resolves once the process has exited. */
  kill(): Promise<void>;
  /** Start again on the same port and dir (the AOF is reloaded); resolves once it answers PING. */
  restart(): Promise<void>;
}

export interface StartRedisServerOptions {
  /** Working directory for the AOF / RDB files and `redis.log`. Created if missing. */
  dir: string;
  /** 0 or undefined → pick a free port. */
  port?: number;
  /** Default true. */
  appendonly?: boolean;
  /** `appendfsync always` instead of `everysec` (every write hits disk before it is acknowledged). */
  fsyncAlways?: boolean;
  /** Binary to run, default `redis-server` from PATH. */
  binary?: string;
  /** Readiness deadline in ms, default 10 000. */
  readyTimeoutMs?: number;
}

const HOST = "127.0.0.1";
const READY_TIMEOUT_MS = 10_000;
const STOP_TIMEOUT_MS = 10_000;

/** Listen on port 0, read the port the OS picked, close. (Racy by nature, but good enough locally.) */
export async function findFreePort(host = HOST): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.once("error", reject);
    srv.listen(0, host, () => {
      const addr = srv.address();
      const port = typeof addr === "object" && addr ? addr.port : 0;
      srv.close((err) => (err ? reject(err) : port ? resolve(port) : reject(new Error("no port assigned"))));
    });
  });
}

/** True when nothing is listening on host:port (we could bind it). */
export async function isPortFree(port: number, host = HOST): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.unref();
    srv.once("error", () => resolve(false));
    srv.listen(port, host, () => srv.close(() => resolve(true)));
  });
}

/**
 * One raw RESP `PING` over a fresh socket. Resolves "pong" on `+PONG`, "loading" while Redis is still
 * replaying its AOF (`-LOADING ...`), "down" on any connection error / other reply / timeout.
 */
export async function pingRedis(
  port: number,
  host = HOST,
  timeoutMs = 1000,
): Promise<"pong" | "loading" | "down"> {
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

export async function startRedisServer(opts: StartRedisServerOptions): Promise<RedisServerHandle> {
  const dir = path.resolve(opts.dir);
  mkdirSync(dir, { recursive: true });
  const port = opts.port ? opts.port : await findFreePort();
  const binary = opts.binary ?? "redis-server";
  const readyTimeoutMs = opts.readyTimeoutMs ?? READY_TIMEOUT_MS;
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
    opts.fsyncAlways ? "always" : "everysec",
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
  ];

  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();

  const launch = async (): Promise<void> => {
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
    exited = new Promise<void>((resolve) => {
      let resolved = false;
      const finish = (info: NonNullable<typeof exitInfo>) => {
        exitInfo ??= info;
        if (resolved) return;
        resolved = true;
        process.removeListener("exit", onParentExit);
        if (child === proc) child = undefined;
        resolve();
      };
      proc.once("exit", (code, signal) => finish({ code, signal }));
      // 'error' fires instead of 'exit' when the binary cannot be spawned at all (ENOENT, EACCES).
      proc.once("error", (error) => finish({ code: null, signal: null, error }));
    });
    child = proc;

    const deadline = Date.now() + readyTimeoutMs;
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
      if (proc.pid !== undefined && (await pingRedis(port)) === "pong") {
        if (!exitInfo) return;
        continue; // it died between the spawn check and the ping: report that instead
      }
      if (Date.now() > deadline) {
        await signalAndWait("SIGKILL");
        const tail = await readLogTail(logFile);
        throw new Error(
          `redis-server on port ${port} did not answer PING within ${readyTimeoutMs} ms` +
            (tail ? `\n--- ${logFile} (tail) ---\n${tail}` : ""),
        );
      }
      await sleep(delay);
      delay = Math.min(delay * 2, 200);
    }
  };

  const signalAndWait = async (signal: NodeJS.Signals): Promise<void> => {
    const proc = child;
    if (!proc) return exited;
    proc.kill(signal);
    const timer = new Promise<"timeout">((r) => setTimeout(() => r("timeout"), STOP_TIMEOUT_MS).unref());
    if ((await Promise.race([exited.then(() => "exited" as const), timer])) === "timeout") {
      proc.kill("SIGKILL");
      await exited;
    }
  };

  await launch();

  return {
    url: `redis://${HOST}:${port}`,
    port,
    dir,
    get pid() {
      return child?.pid;
    },
    stop: () => signalAndWait("SIGTERM"),
    kill: () => signalAndWait("SIGKILL"),
    restart: async () => {
      await signalAndWait("SIGTERM");
      await launch();
    },
  };
}
