import type { Knex } from "knex";
import { loadConfigOrExit } from "./src/config.js";
import { migrationSource } from "./migrations/index.js";

// For the knex CLI (e.g. `npx tsx node_modules/knex/bin/cli.js migrate:status`); the app itself
// migrates through src/platform/migrate.ts with the same migration source and the same database.
const config: Knex.Config = {
  client: "pg",
  connection: loadConfigOrExit().databaseUrl,
  migrations: { migrationSource },
};

export default config;
