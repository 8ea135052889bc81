import { startWeb } from "./api/listen.js";
import { loadConfigOrExit } from "./config.js";
import { createWebDeps } from "./deps.js";

const config = loadConfigOrExit();
const deps = createWebDeps(config);
const web = await startWeb(deps, config.port);
deps.logger.info({ port: web.port }, "web listening");

let stopping = false;
for (const signal of ["SIGTERM", "SIGINT"] as const) {
  process.once(signal, async () => {
    if (stopping) return;
    stopping = true;
    deps.logger.info({ signal }, "web shutting down");
    setTimeout(() => process.exit(1), 25_000).unref();
    await web.stop();
    await deps.close();
    process.exit(0);
  });
}
