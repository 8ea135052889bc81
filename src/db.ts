import knexFactory, { type Knex } from "knex";
import pg from "pg";

export type Db = Knex;

// int8 (bigint) columns hold token counts and micro-dollars; both stay far below 2^53.
pg.types.setTypeParser(pg.types.builtins.INT8, (value: string) => Number(value));

/** A pooled Postgres client. */
export function createDb(connectionString: string, pool: { min?: number; max?: number } = {}): Db {
  return knexFactory({
    client: "pg",
    connection: { connectionString, connectionTimeoutMillis: 5_000 },
    pool: { min: pool.min ?? 0, max: pool.max ?? 10 },
    acquireConnectionTimeout: 10_000,
  });
}
