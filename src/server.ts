import { startWeb } from "./api/listen.js";
import { loadConfigOrExit } from "./config.js";
import { createWebDeps } from "./deps.js";
import { startMetricsServer } from "./platform/metrics-server.js";
import { warnAboutRedis } from "./platform/redis-checks.js";
import { onShutdownSignal } from "./platform/shutdown-signal.js";

const config = loadConfigOrExit();
const deps = createWebDeps(config);
if (config.env === "production") await warnAboutRedis(deps.redis, deps.logger);
const web = await startWeb(deps, config.port);
const metrics = config.metricsPort
  ? await startMetricsServer(deps.metrics.registry, config.metricsPort)
  : undefined;
deps.logger.info({ port: web.port, metricsPort: metrics?.port }, "web listening");

// Stop accepting, let in-flight requests (streams included) finish, exit before Heroku's SIGKILL.
// A request cut off at the deadline loses only its connection: its job is queued and keeps running.
onShutdownSignal(deps.logger, "web", config.shutdownTimeoutMs, async () => {
  // Shortly before the deadline, requests still waiting on a job answer 202 (the job goes on).
  setTimeout(() => deps.draining.abort(), Math.max(0, config.shutdownTimeoutMs - 3_000)).unref();
  await web.stop();
  await metrics?.stop();
  await deps.close();
});
