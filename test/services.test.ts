import os from "node:os";
import { chmodSync, rmSync } from "node:fs";
import { randomBytes } from "node:crypto";
import path from "node:path";
import pg from "pg";
import { Redis } from "ioredis";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { DEFAULT_REDIS_URL } from "../src/config.js";
import { resolvePostgres, resolveRedis } from "../src/local/services.js";
import { startEmbeddedPostgres } from "../src/local/embedded-postgres.js";
import { ensureDatabase } from "../src/local/postgres-probe.js";
import { findFreePort } from "../src/local/ports.js";
import { startRedisServer as spawnRedisServer } from "../src/local/redis-server.js";
import { embeddedPostgresBlocker } from "./helpers/embedded-postgres.js";
import { startRedisServer, tempDir, type RedisServerHandle } from "./helpers/redis-server.js";

const SHARED_PG = "postgres://postgres@127.0.0.1:5432";
const logs: string[] = [];
const log = (msg: string) => logs.push(msg);
const dirs: string[] = [];
const cleanups: Array<() => Promise<void>> = [];

function mkTemp(prefix: string): string {
  const dir = tempDir(prefix);
  dirs.push(dir);
  return dir;
}

function redisClient(url: string): Redis {
  const client = new Redis(url, {
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    retryStrategy: () => null,
    connectTimeout: 3000,
  });
  client.on("error", () => {});
  return client;
}

afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!().catch(() => {});
});

afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

describe("ensureDatabase", () => {
  const name = `meterline_svc_test_${randomBytes(4).toString("hex")}`;
  const url = `${SHARED_PG}/${name}`;

  afterAll(async () => {
    const admin = new pg.Client({ connectionString: `${SHARED_PG}/postgres` });
    await admin.connect();
    try {
      await admin.query(`DROP DATABASE IF EXISTS ${admin.escapeIdentifier(name)}`);
    } finally {
      await admin.end();
    }
  });

  it("creates a missing database and is idempotent (also under concurrency)", async () => {
    await ensureDatabase(url);
    await Promise.all([ensureDatabase(url), ensureDatabase(url), ensureDatabase(url)]);
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      const { rows } = await client.query<{ db: string }>("select current_database() as db");
      expect(rows[0]?.db).toBe(name);
    } finally {
      await client.end();
    }
  });
});

describe("resolvePostgres", () => {
  it("fails loudly (no fallback) when DATABASE_URL does not answer, without leaking the password", async () => {
    const err = await resolvePostgres({
      url: "postgres://postgres:secret@127.0.0.1:1/x",
      dataDir: mkTemp("svc-pg"),
      log,
    }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(Error);
    const msg = (err as Error).message;
    expect(msg).toContain("DATABASE_URL");
    expect(msg).toContain("127.0.0.1:1");
    expect(msg).not.toContain("secret");
  });

  it("uses DATABASE_URL when it answers", async () => {
    const svc = await resolvePostgres({ url: `${SHARED_PG}/postgres`, dataDir: mkTemp("svc-pg"), log });
    expect(svc.source).toBe("env");
    await svc.stop();
  });
});

// As root, embedded Postgres runs as the `postgres` OS user, which cannot reach a checkout under a
// 0700 directory (a mktemp clone, say). There the start must fail fast and say why instead.
const blocker = await embeddedPostgresBlocker(os.tmpdir());

describe("startEmbeddedPostgres", () => {
  it.runIf(blocker)("refuses at once, saying which directory the postgres user cannot enter", async () => {
    const base = mkTemp("svc-embedded-blocked");
    chmodSync(base, 0o755);
    const started = Date.now();
    await expect(
      startEmbeddedPostgres({ dir: path.join(base, "postgres"), port: await findFreePort(), log }),
    ).rejects.toThrow(/cannot enter/);
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it.skipIf(blocker)(
    "initialises, starts, serves queries, stops, and restarts on the persisted cluster",
    async () => {
      const base = mkTemp("svc-embedded");
      chmodSync(base, 0o755); // as root the server runs as the `postgres` OS user, which must reach the dir
      const dir = path.join(base, "postgres");
      const port = await findFreePort();

      const query = async (url: string) => {
        const client = new pg.Client({ connectionString: url });
        await client.connect();
        try {
          const { rows } = await client.query<{ one: number; db: string }>(
            "select 1 as one, current_database() as db",
          );
          return rows[0];
        } finally {
          await client.end();
        }
      };

      let svc = await startEmbeddedPostgres({ dir, port, log });
      cleanups.push(() => svc.stop());
      expect(svc.source).toBe("embedded");
      expect(svc.url).toContain(`:${port}/meterline`);
      expect(await query(svc.url)).toEqual({ one: 1, db: "meterline" });
      await svc.stop();
      await expect(query(svc.url)).rejects.toThrow();

      // Second start reuses the cluster (no initdb) and the existing database.
      svc = await startEmbeddedPostgres({ dir, port, log });
      expect(await query(svc.url)).toEqual({ one: 1, db: "meterline" });
      await svc.stop();
    },
    60_000,
  );
});

describe("resolveRedis", () => {
  it("fails loudly when REDIS_URL does not answer, without leaking the password", async () => {
    const err = await resolveRedis({
      url: "redis://:secret@127.0.0.1:1",
      dataDir: mkTemp("svc-redis"),
      log,
    }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(Error);
    const msg = (err as Error).message;
    expect(msg).toContain("REDIS_URL");
    expect(msg).not.toContain("secret");
  });

  it("uses the shared local Redis without spawning anything", async () => {
    const dataDir = mkTemp("svc-redis");
    const svc = await resolveRedis({ dataDir, log });
    expect(svc.source).toBe("local");
    expect(svc.url).toBe(DEFAULT_REDIS_URL);
    await svc.stop();
  });
});

describe("startRedisServer", () => {
  let server: RedisServerHandle | undefined;
  afterEach(async () => {
    await server?.stop();
    server = undefined;
  });

  it("serves PING, dies on kill(), and restart() reloads the AOF on the same port", async () => {
    server = await startRedisServer({ dir: mkTemp("svc-redis-server"), fsyncAlways: true });
    const { port, url } = server;
    expect(url).toBe(`redis://127.0.0.1:${port}`);
    expect(server.pid).toBeTypeOf("number");

    const a = redisClient(url);
    await a.connect();
    expect(await a.ping()).toBe("PONG");
    await a.set("meterline:test:key", "survives");

    await server.kill();
    expect(server.pid).toBeUndefined();
    await expect(a.get("meterline:test:key")).rejects.toThrow();
    a.disconnect();
    const down = redisClient(url);
    await expect(down.connect()).rejects.toThrow();
    down.disconnect();

    await server.restart();
    expect(server.port).toBe(port);
    const b = redisClient(url);
    await b.connect();
    try {
      expect(await b.get("meterline:test:key")).toBe("survives");
    } finally {
      b.disconnect();
    }
  }, 60_000);

  it("keeps appendfsync always across restart() when asked for it", async () => {
    server = await startRedisServer({ dir: mkTemp("svc-redis-fsync"), fsyncAlways: true });
    const fsyncPolicy = async () => {
      const c = redisClient(server!.url);
      await c.connect();
      try {
        return ((await c.config("GET", "appendfsync")) as string[])[1];
      } finally {
        c.disconnect();
      }
    };
    expect(await fsyncPolicy()).toBe("always");
    await server.restart();
    expect(await fsyncPolicy()).toBe("always");
  }, 60_000);

  it("the npm start handle: exited resolves and pid clears when the process dies", async () => {
    const handle = await spawnRedisServer({ dir: mkTemp("svc-redis-spawn") });
    cleanups.push(() => handle.stop());
    const pid = handle.pid;
    expect(pid).toBeTypeOf("number");
    process.kill(pid!, "SIGKILL");
    await handle.exited;
    expect(handle.pid).toBeUndefined();
    await handle.stop(); // stopping a process that is already gone resolves at once
  }, 60_000);

  it("rejects clearly when the binary is missing", async () => {
    await expect(
      startRedisServer({ dir: mkTemp("svc-redis-missing"), binary: "redis-server-does-not-exist" }),
    ).rejects.toThrow(/redis-server not found/);
  });
});
