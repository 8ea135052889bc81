import type { Config } from "../src/config.js";
import type { Queues } from "../src/queues.js";

/** The reporting job schedulers; upserting is idempotent, so every worker does it at boot. */
export async function upsertReportingSchedules(
  queues: Pick<Queues, "usageFlush" | "reconcile">,
  config: Config,
): Promise<void> {
  const { flushIntervalMs, sweepIntervalMs, reconcileIntervalMs } = config.reporting;
  await queues.usageFlush.upsertJobScheduler("usage-flush", { every: flushIntervalMs }, { name: "flush" });
  await queues.usageFlush.upsertJobScheduler("usage-sweep", { every: sweepIntervalMs }, { name: "sweep" });
  await queues.reconcile.upsertJobScheduler(
    "reconcile",
    { every: reconcileIntervalMs },
    { name: "reconcile", data: {} },
  );
}

/** Housekeeping that runs whether or not Stripe is configured. */
export async function upsertMaintenanceSchedules(
  queues: Pick<Queues, "maintenance">,
  config: Config,
): Promise<void> {
  await queues.maintenance.upsertJobScheduler(
    "purge-chats",
    { every: config.chatPurgeIntervalMs },
    { name: "purge-chats" },
  );
}
