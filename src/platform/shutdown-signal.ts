import type { Logger } from "./logger.js";

/**
 * Runs `stop` once, on the first SIGTERM or SIGINT, then exits 0. Heroku sends SIGKILL 30 s after
 * SIGTERM, so a stop that is not done by `exitAfterMs` exits 1 instead of hanging into the kill.
 */
export function onShutdownSignal(
  logger: Logger,
  processName: string,
  exitAfterMs: number,
  stop: () => Promise<void>,
): void {
  let stopping = false;
  for (const signal of ["SIGTERM", "SIGINT"] as const) {
    process.once(signal, async () => {
      if (stopping) return;
      stopping = true;
      logger.info({ signal }, `${processName} shutting down`);
      setTimeout(() => process.exit(1), exitAfterMs).unref();
      await stop();
      logger.info(`${processName} stopped`);
      process.exit(0);
    });
  }
}
