import knexFactory, { type Knex } from "knex";
import pg from "pg";

export type Db = Knex;

// int8 (bigint) columns hold token counts and micro-dollars, bounded below 2^53 by the intake and
// by CHECKs (migration 20261202001200_usage_bounds). A value past that fails its query loudly
// rather than being rounded into a wrong bill; sums are numeric and checked (usage-bounds.ts).
pg.types.setTypeParser(pg.types.builtins.INT8, (value: string) => {
  const n = Number(value);
  if (!Number.isSafeInteger(n)) throw new RangeError(`int8 value ${value} is beyond 2^53 - 1: not exact`);
  return n;
});

/** A pooled Postgres client. */
export function createDb(connectionString: string, pool: { min?: number; max?: number } = {}): Db {
  return knexFactory({
    client: "pg",
    connection: { connectionString, connectionTimeoutMillis: 5_000 },
    pool: { min: pool.min ?? 0, max: pool.max ?? 10 },
    acquireConnectionTimeout: 10_000,
  });
}
