import { loadConfigOrExit } from "../src/config.js";
import { createDeps } from "../src/deps.js";
import { startWorkers } from "./index.js";

const config = loadConfigOrExit();
const deps = createDeps(config, "worker");
const workers = startWorkers(deps);
deps.logger.info({ queues: workers.workers.map((w) => w.name) }, "worker started");

// Heroku sends SIGKILL 30 s after SIGTERM: let active jobs finish, then exit. A job still active at
// the kill stalls and another worker retries it; the ledger's unique request id keeps that safe.
let stopping = false;
for (const signal of ["SIGTERM", "SIGINT"] as const) {
  process.once(signal, async () => {
    if (stopping) return;
    stopping = true;
    deps.logger.info({ signal }, "worker shutting down");
    const deadline = setTimeout(() => process.exit(1), 25_000);
    deadline.unref();
    await workers.close();
    await deps.close();
    process.exit(0);
  });
}
