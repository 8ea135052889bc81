import type { Knex } from "knex";

/** Months of the ledger made ahead of now: a scheduled run missed for weeks still finds them. */
export const MONTHS_AHEAD = 3;

const monthStart = (year: number, month: number) => new Date(Date.UTC(year, month, 1));
const partitionName = (start: Date) =>
  `usage_events_${start.getUTCFullYear()}${String(start.getUTCMonth() + 1).padStart(2, "0")}`;

// Only one maker at a time: workers booting together would otherwise race on the catalog.
const LOCK_KEY = 0x75736167;

/**
 * Makes the ledger's monthly partitions from the month of `from` (default: now) to MONTHS_AHEAD
 * months after now; idempotent. A month the legacy partition (migration
 * 20261202003150_partition_usage_events) already covers is skipped. Rows the DEFAULT partition
 * holds for a new month move into it in the same transaction, so none is lost or doubled.
 * Returns the partitions made.
 */
export async function ensurePartitions(
  db: Knex | Knex.Transaction,
  opts: { now?: Date; from?: Date } = {},
): Promise<string[]> {
  const now = opts.now ?? new Date();
  const from = opts.from ?? now;
  const made: string[] = [];
  let start = monthStart(from.getUTCFullYear(), from.getUTCMonth());
  const last = monthStart(now.getUTCFullYear(), now.getUTCMonth() + MONTHS_AHEAD);
  await db.transaction(async (trx) => {
    await trx.raw("SELECT pg_advisory_xact_lock(?)", [LOCK_KEY]);
    for (; start <= last; start = monthStart(start.getUTCFullYear(), start.getUTCMonth() + 1)) {
      const end = monthStart(start.getUTCFullYear(), start.getUTCMonth() + 1);
      if (await makePartition(trx, partitionName(start), start, end)) made.push(partitionName(start));
    }
  });
  return made;
}

async function makePartition(trx: Knex.Transaction, name: string, start: Date, end: Date): Promise<boolean> {
  const { rows } = await trx.raw<{ rows: Array<{ covered: boolean }> }>(
    `SELECT EXISTS (
       SELECT 1 FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
       WHERE i.inhparent = 'usage_events'::regclass
         AND (c.relname = :name OR (
           pg_get_expr(c.relpartbound, c.oid) LIKE 'FOR VALUES FROM (MINVALUE) TO %'
           AND (regexp_match(pg_get_expr(c.relpartbound, c.oid), 'TO \\(''(.*)''\\)'))[1]::timestamptz >= :end))
     ) AS covered`,
    { name, end },
  );
  if (rows[0]!.covered) return false;
  // Made apart, filled from the DEFAULT partition, then attached: attaching checks the DEFAULT
  // partition holds no row of the month, which the move has just made true.
  await trx.raw(
    `CREATE TABLE ${name} (LIKE usage_events INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING STORAGE)`,
  );
  await trx.raw(
    `WITH moved AS (
       DELETE FROM usage_events_default WHERE created_at >= :start AND created_at < :end RETURNING *
     ) INSERT INTO ${name} SELECT * FROM moved`,
    { start, end },
  );
  await trx.raw(
    `ALTER TABLE usage_events ATTACH PARTITION ${name} FOR VALUES FROM ('${start.toISOString()}') TO ('${end.toISOString()}')`,
  );
  return true;
}
