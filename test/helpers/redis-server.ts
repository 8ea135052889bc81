import { mkdtempSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { Redis } from "ioredis";
import {
  startRedisServer as spawnRedisServer,
  type StartRedisServerOptions,
} from "../../src/local/redis-server.js";

/** A private redis-server that a test may crash and bring back, without touching the shared Redis. */
export interface RedisServerHandle {
  url: string;
  port: number;
  dir: string;
  /** pid of the current process, undefined while it is not running. */
  readonly pid: number | undefined;
  /** SIGTERM (Redis flushes the AOF and exits cleanly); resolves once the process has exited. */
  stop(): Promise<void>;
  /** SIGKILL (simulates a crash); resolves once the process has exited. */
  kill(): Promise<void>;
  /** Start again on the same port and dir (the AOF is reloaded); resolves once it answers PING. */
  restart(): Promise<void>;
}

export interface TestRedisServerOptions extends StartRedisServerOptions {
  /** `appendfsync always` instead of `everysec`: every write is on disk before it is acknowledged, so
   * a kill() loses nothing that was acknowledged. */
  fsyncAlways?: boolean;
}

export async function startRedisServer(opts: TestRedisServerOptions): Promise<RedisServerHandle> {
  const launch = async (port?: number) => {
    const server = await spawnRedisServer({ ...opts, port });
    if (opts.fsyncAlways) {
      const admin = new Redis(server.url, { maxRetriesPerRequest: 1 });
      try {
        await admin.config("SET", "appendfsync", "always");
      } finally {
        admin.disconnect();
      }
    }
    return server;
  };
  let current = await launch(opts.port);
  const { url, port, dir } = current;
  return {
    url,
    port,
    dir,
    get pid() {
      return current.pid;
    },
    stop: () => current.stop(),
    kill: async () => {
      if (current.pid !== undefined) process.kill(current.pid, "SIGKILL");
      await current.exited;
    },
    restart: async () => {
      await current.stop();
      current = await launch(port);
    },
  };
}

/** A fresh, empty directory under os.tmpdir() (mode 0700; the caller removes it). */
export function tempDir(prefix: string): string {
  return mkdtempSync(path.join(os.tmpdir(), `${prefix.replace(/[^\w.-]/g, "_")}-`));
}
