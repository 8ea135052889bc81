import { loadConfigOrExit } from "../src/config.js";
import { createDeps } from "../src/deps.js";
import { startMetricsServer } from "../src/metrics-server.js";
import { loadTokenizer } from "../src/llm/token-counter.js";
import { warnAboutRedis } from "../src/redis-checks.js";
import { startWorkers } from "./index.js";
import { shutdownWorkers } from "./shutdown.js";

const config = loadConfigOrExit();
const deps = createDeps(config, "worker");
if (config.env === "production") await warnAboutRedis(deps.redis, deps.logger);
// Chats without a provider usage are estimated: load the tokenizer before the first job, not in it.
await loadTokenizer();
const workers = startWorkers(deps);
const metrics = config.metricsPort
  ? await startMetricsServer(deps.metrics.registry, config.metricsPort)
  : undefined;
deps.logger.info(
  { queues: workers.workers.map((w) => w.name), metricsPort: metrics?.port },
  "worker started",
);

// Heroku sends SIGKILL 30 s after SIGTERM: stop taking jobs, let active ones finish, and at
// SHUTDOWN_TIMEOUT_MS hand the rest back to the queue so another worker retries them.
let stopping = false;
for (const signal of ["SIGTERM", "SIGINT"] as const) {
  process.once(signal, async () => {
    if (stopping) return;
    stopping = true;
    deps.logger.info({ signal }, "worker shutting down");
    setTimeout(() => process.exit(1), config.shutdownTimeoutMs + 4_000).unref();
    await shutdownWorkers(workers, config.shutdownTimeoutMs, deps.logger);
    await metrics?.stop();
    await deps.close();
    deps.logger.info("worker stopped");
    process.exit(0);
  });
}
