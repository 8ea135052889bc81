// Resolves the Postgres and Redis the local stack (`npm start`) talks to.
//
// Contract (design doc):
//   - An explicit URL (DATABASE_URL / REDIS_URL) must answer, otherwise we fail loudly — never fall back.
//   - Otherwise use the conventional local service (127.0.0.1:5432 / :6379) when it answers ("local").
//   - Otherwise start a private one under <dataDir>: embedded Postgres ("embedded"), spawned redis-server
//     with AOF ("spawned"). Both persist across runs.
//
// This module never reads process.env: callers pass the values in.
import path from "node:path";
import { DEFAULT_DATABASE_URL, DEFAULT_REDIS_URL } from "../config.js";
import { startEmbeddedPostgres } from "./embedded-postgres.js";
import { describeError, maskUrl } from "./mask-url.js";
import { isPortFree } from "./ports.js";
import { connectOrCreate } from "./postgres-probe.js";
import { probeRedis, redisProbeClient } from "./redis-probe.js";
import { startRedisServer } from "./redis-server.js";

export interface ResolvedService {
  url: string;
  source: "env" | "local" | "embedded" | "spawned";
  stop(): Promise<void>;
}

type Log = (msg: string) => void;
interface ResolveOptions {
  /** The URL the user set (DATABASE_URL / REDIS_URL), if any. */
  url?: string;
  dataDir: string;
  log: Log;
}
interface ServiceKind {
  service: "postgres" | "redis";
  variable: string;
  defaultUrl: string;
  probe: (url: string) => Promise<unknown>;
}

const EMBEDDED_PG_PORT = 54329;
const SPAWNED_REDIS_PORT = 6389;
const POSTGRES: ServiceKind = {
  service: "postgres",
  variable: "DATABASE_URL",
  defaultUrl: DEFAULT_DATABASE_URL,
  probe: connectOrCreate,
};
const REDIS: ServiceKind = {
  service: "redis",
  variable: "REDIS_URL",
  defaultUrl: DEFAULT_REDIS_URL,
  probe: probeRedis,
};

const noop = async (): Promise<void> => {};

/**
 * The contract shared by Postgres and Redis: a URL the user set must answer (never a silent
 * fallback); without one, the local default if it answers; else undefined, and the caller starts one.
 */
async function resolveConfigured(
  kind: ServiceKind,
  opts: ResolveOptions,
): Promise<ResolvedService | undefined> {
  const { service, variable, defaultUrl, probe } = kind;
  const { url, log } = opts;
  if (url) {
    try {
      await probe(url);
    } catch (err) {
      throw new Error(`${variable} is unreachable: ${maskUrl(url)} (${describeError(err, url)})`, {
        cause: err,
      });
    }
    log(`${service}: using ${variable} ${maskUrl(url)}`);
    return { url, source: "env", stop: noop };
  }
  try {
    await probe(defaultUrl);
    log(`${service}: using local server ${defaultUrl}`);
    return { url: defaultUrl, source: "local", stop: noop };
  } catch (err) {
    log(
      `${service}: ${defaultUrl} not usable (${describeError(err, defaultUrl)}); starting one under the data dir`,
    );
    return undefined;
  }
}

export async function resolvePostgres(opts: ResolveOptions): Promise<ResolvedService> {
  const found = await resolveConfigured(POSTGRES, opts);
  if (found) return found;
  const dir = path.resolve(opts.dataDir, "postgres");
  return startEmbeddedPostgres({ dir, port: EMBEDDED_PG_PORT, allowOtherPort: true, log: opts.log });
}

const REDIS_INSTALL_HINT =
  "Install Redis: `apt-get install redis-server` (Debian/Ubuntu) or `brew install redis` (macOS), " +
  "or run it with Docker: `docker compose up -d redis` (see docker-compose.yml), " +
  "or point REDIS_URL at an existing Redis.";

/**
 * A redis-server we spawned on `port` with `dir` may survive its parent (e.g. the parent was SIGKILLed).
 * If that is what answers on the port, shut it down (SHUTDOWN persists the AOF) so we can start a fresh,
 * supervised one on the same files. Returns false when the port is held by something else.
 */
async function reclaimStaleRedis(port: number, dir: string, log: Log): Promise<boolean> {
  const { client } = redisProbeClient(`redis://127.0.0.1:${port}`);
  try {
    await client.connect();
    const reply = (await client.call("CONFIG", "GET", "dir")) as unknown;
    const staleDir = Array.isArray(reply) ? reply[1] : undefined;
    if (typeof staleDir !== "string" || path.resolve(staleDir) !== dir) return false;
    log(`redis: shutting down a redis-server left running on port ${port} by a previous run`);
    await client.call("SHUTDOWN").catch(() => {}); // the connection drops; that is the success case
  } catch {
    return false;
  } finally {
    client.disconnect();
  }
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    if (await isPortFree(port)) return true;
    await new Promise((r) => setTimeout(r, 50));
  }
  return false;
}

export async function resolveRedis(opts: ResolveOptions): Promise<ResolvedService> {
  const { log } = opts;
  const found = await resolveConfigured(REDIS, opts);
  if (found) return found;
  const dir = path.resolve(opts.dataDir, "redis");
  let port = SPAWNED_REDIS_PORT;
  if (!(await isPortFree(port)) && !(await reclaimStaleRedis(port, dir, log))) port = 0;

  let handle;
  try {
    handle = await startRedisServer({ dir, port, appendonly: true });
  } catch (err) {
    const e = err as Error & { cause?: NodeJS.ErrnoException };
    if (e.cause?.code === "ENOENT") {
      throw new Error(
        `No Redis available: nothing answers on ${DEFAULT_REDIS_URL} and redis-server is not installed. ${REDIS_INSTALL_HINT}`,
        {
          cause: err,
        },
      );
    }
    throw err;
  }
  log(`redis: spawned redis-server on ${handle.url} (pid ${handle.pid ?? "?"}, AOF in ${dir})`);
  return { url: handle.url, source: "spawned", stop: () => handle.stop() };
}
