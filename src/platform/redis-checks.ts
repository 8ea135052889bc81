import type { Logger } from "./logger.js";
import type { RedisClient } from "./redis.js";

const field = (info: string, name: string) => info.match(new RegExp(`^${name}:(.*)$`, "m"))?.[1]?.trim();

/**
 * What is unsafe about a Redis for BullMQ in production: an eviction policy other than `noeviction`
 * (Redis may silently drop queued jobs) or no persistence at all (a restart loses every job).
 * Reads INFO, which managed Redis services allow even where CONFIG is disabled.
 */
export async function redisProductionWarnings(
  redis: Pick<RedisClient, "info" | "config">,
): Promise<string[]> {
  const warnings: string[] = [];
  const memory = await redis.info("memory");
  const policy = field(memory, "maxmemory_policy");
  if (policy !== "noeviction") {
    warnings.push(
      `Redis maxmemory-policy is '${policy ?? "unknown"}', not 'noeviction': under memory pressure Redis may evict queued jobs.`,
    );
  }
  const persistence = await redis.info("persistence");
  const aof = field(persistence, "aof_enabled") === "1";
  // RDB snapshots are on when `save` has rules; INFO cannot tell, CONFIG can (where it is allowed).
  let rdb: boolean | undefined;
  try {
    const save = (await redis.config("GET", "save")) as string[];
    rdb = (save[1] ?? "").trim() !== "";
  } catch {
    rdb = undefined;
  }
  if (!aof && rdb === false) {
    warnings.push("Redis has neither AOF nor RDB persistence: a restart loses every queued job.");
  } else if (!aof && rdb === undefined) {
    warnings.push("Redis AOF is off and RDB snapshots could not be checked: a restart may lose queued jobs.");
  }
  return warnings;
}

type Checked = Pick<RedisClient, "info" | "config" | "status" | "once" | "off">;

/**
 * At boot in production: log each unsafe Redis setting loudly; never stops the process. Waits for
 * the connection first: the API's connection does not queue commands while it connects.
 */
export async function warnAboutRedis(redis: Checked, logger: Logger, readyWithinMs = 10_000): Promise<void> {
  try {
    await connected(redis, readyWithinMs);
    for (const warning of await redisProductionWarnings(redis))
      logger.error(`UNSAFE REDIS FOR PRODUCTION: ${warning}`);
  } catch (err) {
    logger.warn({ err: (err as Error).message }, "could not check Redis settings at boot");
  }
}

async function connected(redis: Checked, withinMs: number): Promise<void> {
  if (redis.status === "ready") return;
  await new Promise<void>((resolve, reject) => {
    const onReady = () => {
      clearTimeout(timer);
      resolve();
    };
    const timer = setTimeout(() => {
      redis.off("ready", onReady);
      reject(new Error(`Redis was not ready within ${withinMs} ms`));
    }, withinMs);
    redis.once("ready", onReady);
  });
}
