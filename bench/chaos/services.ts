import { chmodSync, mkdtempSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { startEmbeddedPostgres } from "../../src/local/embedded-postgres.js";
import { findFreePort } from "../../src/local/ports.js";
import type { ResolvedService } from "../../src/local/services.js";
import { startRedisServer, type RedisServerHandle } from "../../test/helpers/redis-server.js";

/** A Postgres of the chaos run's own, on its own port and data dir: restarting it harms nobody else. */
export interface PrivatePostgres {
  url: string;
  /** Fast shutdown (open connections are cut, as on a failover), then start again on the same data. */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

/** The run's services: a private Postgres and a private redis-server with AOF, under one temp dir. */
export async function startPrivateServices(log: (msg: string) => void): Promise<{
  dir: string;
  postgres: PrivatePostgres;
  redis: RedisServerHandle;
}> {
  const dir = mkdtempSync(path.join(os.tmpdir(), "meterline-chaos-"));
  // As root, embedded Postgres runs as the `postgres` OS user, which must enter this directory.
  chmodSync(dir, 0o755);
  const pgDir = path.join(dir, "postgres");
  const pgPort = await findFreePort();
  let current: ResolvedService = await startEmbeddedPostgres({ dir: pgDir, port: pgPort, log });
  const postgres: PrivatePostgres = {
    url: current.url,
    async restart() {
      await current.stop();
      current = await startEmbeddedPostgres({ dir: pgDir, port: pgPort, log: () => {} });
    },
    stop: () => current.stop(),
  };
  // everysec, as production runs it: a kill -9 may lose the last second of queue writes, which
  // meterline must heal from Postgres.
  const redis = await startRedisServer({ dir: path.join(dir, "redis"), appendonly: true });
  log(`redis: private redis-server on ${redis.url} (AOF, appendfsync everysec)`);
  return { dir, postgres, redis };
}
