import { randomBytes } from "node:crypto";
import pg from "pg";
import { createDb, type Db } from "../../src/platform/db.js";
import { migrateLatest } from "../../src/platform/migrate.js";
import { seedDefaultPlans } from "../../src/billing/pricing/plans.js";

const ADMIN_URL = "postgres://postgres@127.0.0.1:5432/postgres";

/** A fresh, migrated database per test file on the shared Postgres; drop() removes it. */
export async function createTestDatabase(): Promise<{ url: string; db: Db; drop(): Promise<void> }> {
  const name = `meterline_test_${randomBytes(6).toString("hex")}`;
  const admin = new pg.Client({ connectionString: ADMIN_URL });
  await admin.connect();
  await admin.query(`CREATE DATABASE "${name}"`);
  await admin.end();
  const url = `postgres://postgres@127.0.0.1:5432/${name}`;
  const db = createDb(url, { max: 5 });
  await migrateLatest(db);
  await seedDefaultPlans(db);
  return {
    url,
    db,
    async drop() {
      await db.destroy();
      const client = new pg.Client({ connectionString: ADMIN_URL });
      await client.connect();
      await client.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
      await client.end();
    },
  };
}
