import { migrationSource } from "../../migrations/index.js";
import type { Db } from "./db.js";

/** Brings the schema up to date; safe to run concurrently (knex takes a lock). */
export async function migrateLatest(db: Db): Promise<string[]> {
  const [, applied] = (await db.migrate.latest({ migrationSource })) as [number, string[]];
  return applied;
}
