import type { Queue } from "bullmq";
import type { Config } from "../config.js";
import type { Logger } from "../platform/logger.js";
import type { Queues } from "./queues.js";
import { upsertSchedule, type Schedule, type ScheduledQueue } from "./schedules.js";

type Deps = { queues: Pick<Queues, ScheduledQueue>; config: Config; logger: Logger };

/**
 * Upserts every schedule at boot, then checks each one every shortest interval and re-creates the
 * ones Redis has lost (FLUSHALL, a failover to an empty replica, eviction). A schedule lives only
 * in Redis, so without this a lost one stays lost until a worker restarts.
 *
 * A check is one read script per schedule (ZSCORE + HGETALL) and writes nothing while the schedule
 * exists. A re-created every-N schedule runs at once. Two workers re-creating the same schedule at
 * the same moment may add one extra run; every scheduled job is idempotent, so that is harmless.
 */
export function startScheduleKeeper(deps: Deps, schedules: readonly Schedule[]): { stop(): Promise<void> } {
  const { queues, config, logger } = deps;
  if (schedules.length === 0) return { stop: async () => {} };
  // Until its first upsert succeeds (Redis may be down at boot), a schedule is created, not healed.
  const created = new Set<string>();
  let current: Promise<void> | undefined;

  const keep = async (schedule: Schedule): Promise<void> => {
    const queue = queues[schedule.queue] as Queue;
    const known = created.has(schedule.id);
    if (known && (await queue.getJobScheduler(schedule.id))) return;
    await upsertSchedule(queues, config, schedule);
    created.add(schedule.id);
    if (known) {
      logger.warn(
        { schedule: schedule.id, queue: queue.name, everyMs: schedule.everyMs(config) },
        "job schedule was missing from Redis (data lost?): re-created it; check Redis persistence and eviction",
      );
    }
  };
  const check = async (): Promise<void> => {
    for (const schedule of schedules) {
      await keep(schedule).catch((err: Error) =>
        logger.warn(
          { schedule: schedule.id, err: err.message },
          "could not check or create a job schedule; the next check retries",
        ),
      );
    }
  };
  const tick = (): void => {
    current ??= check().finally(() => (current = undefined));
  };

  tick();
  const timer = setInterval(tick, Math.min(...schedules.map((s) => s.everyMs(config))));
  timer.unref();
  return {
    stop: async () => {
      clearInterval(timer);
      await current;
    },
  };
}
