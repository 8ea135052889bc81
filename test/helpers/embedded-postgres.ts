import path from "node:path";
import { checkPostgresUserAccess } from "../../src/local/postgres-access.js";

/**
 * Why embedded Postgres cannot start under `dataDir` here, or undefined when it can: as root its
 * binaries and data dir must be reachable by the `postgres` OS user (not so under a 0700 directory).
 */
export async function embeddedPostgresBlocker(dataDir: string): Promise<string | undefined> {
  try {
    await checkPostgresUserAccess(path.resolve(dataDir, "x"));
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
}
