import type { Queue } from "bullmq";
import type { Config } from "../config.js";
import type { Queues } from "./queues.js";

/** The keys of `Queues` that hold a queue (not `all`, `byName`, `close`). */
export type ScheduledQueue = { [K in keyof Queues]: Queues[K] extends Queue ? K : never }[keyof Queues];

/** One BullMQ job scheduler, as data: adding a periodic job is adding an entry to SCHEDULES. */
export interface Schedule {
  /** The job scheduler id; also what a worker checks for to re-create a lost schedule. */
  id: string;
  queue: ScheduledQueue;
  everyMs: (config: Config) => number;
  template: { name: string; data?: Record<string, unknown> };
  /** Only where usage is reported to Stripe (STRIPE_SECRET_KEY set). */
  needsStripe?: boolean;
}

export const SCHEDULES: readonly Schedule[] = [
  {
    id: "usage-flush",
    queue: "usageFlush",
    everyMs: (c) => c.reporting.flushIntervalMs,
    template: { name: "flush" },
    needsStripe: true,
  },
  {
    id: "usage-sweep",
    queue: "usageFlush",
    everyMs: (c) => c.reporting.sweepIntervalMs,
    template: { name: "sweep" },
    needsStripe: true,
  },
  {
    id: "reconcile",
    queue: "reconcile",
    everyMs: (c) => c.reporting.reconcileIntervalMs,
    template: { name: "reconcile", data: {} },
    needsStripe: true,
  },
  {
    // Chat claims and outcomes past their promise (src/chat/requests.ts); runs without Stripe too.
    id: "purge-chats",
    queue: "maintenance",
    everyMs: (c) => c.chatPurgeIntervalMs,
    template: { name: "purge-chats" },
  },
  {
    // Credit grants past their expiry get their expiry entry (src/billing/credits/expiry.ts).
    id: "expire-credits",
    queue: "maintenance",
    everyMs: (c) => c.creditExpiryIntervalMs,
    template: { name: "expire-credits" },
  },
  {
    // Pending webhook deliveries whose job Redis lost (src/notifications/delivery-sweeper.ts).
    id: "sweep-webhooks",
    queue: "maintenance",
    everyMs: (c) => c.webhooks.sweepIntervalMs,
    template: { name: "sweep-webhooks" },
  },
  {
    // The ledger's monthly partitions, made MONTHS_AHEAD ahead (src/billing/ledger/partitions.ts);
    // jobs/worker.ts also makes them at boot.
    id: "ledger-partitions",
    queue: "maintenance",
    everyMs: () => 6 * 3_600_000,
    template: { name: "ledger-partitions" },
  },
];

/** The schedules a worker runs: all of them, less Stripe's when it does not report usage. */
export function schedulesFor(stripe: boolean): Schedule[] {
  return SCHEDULES.filter((s) => stripe || !s.needsStripe);
}

/**
 * Creates or updates one schedule. Idempotent (BullMQ 6.7 `addJobScheduler`): when the scheduler
 * exists with the same interval, its pending job is replaced at the same time, so a repeat neither
 * shifts nor duplicates the next run; a new interval takes effect from now.
 */
export async function upsertSchedule(
  queues: Pick<Queues, ScheduledQueue>,
  config: Config,
  schedule: Schedule,
): Promise<void> {
  const queue = queues[schedule.queue] as Queue;
  await queue.upsertJobScheduler(schedule.id, { every: schedule.everyMs(config) }, schedule.template);
}
