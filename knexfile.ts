import type { Knex } from "knex";
import { migrationSource } from "./migrations/index.js";

// For the knex CLI (e.g. `npx tsx node_modules/knex/bin/cli.js migrate:status`); the app itself
// migrates through src/platform/migrate.ts with the same migration source.
const config: Knex.Config = {
  client: "pg",
  connection: process.env.DATABASE_URL ?? "postgres://postgres@127.0.0.1:5432/meterline",
  migrations: { migrationSource },
};

export default config;
