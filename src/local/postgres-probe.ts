import pg from "pg";

const PROBE_TIMEOUT_MS = 3000;

function pgCode(err: unknown): string | undefined {
  return typeof err === "object" && err !== null && "code" in err && typeof err.code === "string"
    ? err.code
    : undefined;
}

async function withPg<T>(connectionString: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({
    connectionString,
    connectionTimeoutMillis: PROBE_TIMEOUT_MS,
    query_timeout: PROBE_TIMEOUT_MS,
  });
  client.on("error", () => {}); // a dropped probe connection must not crash the process
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
export async function connectOrCreate(url: string): Promise<void> {
  try {
    await probePostgres(url);
  } catch (err) {
    if (pgCode(err) !== "3D000") throw err;
    await ensureDatabase(url);
    await probePostgres(url);
  }
}
