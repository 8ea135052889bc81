import { loadConfigOrExit } from "./config.js";
import { createDb } from "./platform/db.js";
import { migrateLatest } from "./platform/migrate.js";
import { seedDefaultPlans } from "./billing/pricing/plans.js";

// The release phase: migrations, then the default plans (never overwriting edited ones).
const config = loadConfigOrExit();
const db = createDb(config.databaseUrl, { max: 1 });
try {
  const applied = await migrateLatest(db);
  await seedDefaultPlans(db);
  console.log(applied.length ? `applied migrations: ${applied.join(", ")}` : "schema is up to date");
} finally {
  await db.destroy();
}
