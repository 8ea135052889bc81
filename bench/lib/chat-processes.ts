import type { BenchContext } from "./context.js";

/**
 * Every process one chat runs through, by name: meterline's processes (`names`, as started by the
 * stack), the emulator, the run's private Redis, and the Postgres backends serving the run's
 * database (the shared server's other backends and its background writers are not counted);
 * `services: false` leaves Redis and Postgres out, for a peer that uses neither.
 */
export async function chatProcesses(
  ctx: Pick<BenchContext, "stack" | "env">,
  names: readonly string[],
  { services = true } = {},
): Promise<Array<{ name: string; pid: number }>> {
  const { stack, env } = ctx;
  const ours = stack.children
    .running()
    .filter((c) => names.includes(c.name) || c.name === "openai-emulator")
    .map((c) => ({ name: c.name === "openai-emulator" ? "emulator" : c.name, pid: c.pid }));
  if (!services) return ours;
  const backends = await env.db.raw<{ rows: Array<{ pid: number }> }>(
    "SELECT pid FROM pg_stat_activity WHERE datname = ? AND pid <> pg_backend_pid()",
    [env.databaseName],
  );
  const redis = env.redisPid === undefined ? [] : [{ name: "redis", pid: env.redisPid }];
  return [...ours, ...redis, ...backends.rows.map((r) => ({ name: "postgres", pid: r.pid }))];
}
