import type { Knex } from "knex";

// The ledger becomes a table partitioned by month of `created_at` (README "The partitioned
// ledger"), converted in place: the existing table is attached as the partition of every time
// before the month after its last row (or after now), so no row is copied; its CHECK constraint on
// that range is validated first, so ATTACH proves the bound without a second scan. Monthly
// partitions follow, made ahead by src/billing/ledger/partitions.ts, and a DEFAULT partition takes
// a row no month covers yet. An empty ledger is simply replaced, its months made from now.
//
// A unique index on a partitioned table must hold the partition key, so request_id's uniqueness —
// the ledger's exactly-once key — moves to `usage_requests`, claimed in the row's own transaction
// (src/billing/ledger/ledger.ts). No foreign key references usage_events.
const LEGACY = "usage_events_legacy";

type Constraint = { conname: string; def: string };

async function constraintsOf(knex: Knex, table: string, types: string[]): Promise<Constraint[]> {
  const { rows } = await knex.raw<{ rows: Constraint[] }>(
    `SELECT conname, pg_get_constraintdef(oid) AS def FROM pg_constraint
     WHERE conrelid = ?::regclass AND contype = ANY(?) ORDER BY conname`,
    [table, types],
  );
  return rows;
}

/** Plain (not constraint-backed) indexes, as `CREATE INDEX` text. */
async function plainIndexesOf(knex: Knex, table: string): Promise<Array<{ name: string; def: string }>> {
  const { rows } = await knex.raw<{ rows: Array<{ name: string; def: string }> }>(
    `SELECT i.relname AS name, pg_get_indexdef(i.oid) AS def
     FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
     WHERE x.indrelid = ?::regclass
       AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = x.indexrelid)
     ORDER BY 1`,
    [table],
  );
  return rows;
}

const utc = (d: Date) => d.toISOString();

export async function up(knex: Knex): Promise<void> {
  await knex.raw("LOCK TABLE usage_events IN ACCESS EXCLUSIVE MODE");
  await knex.raw(`CREATE TABLE usage_requests (
    request_id text PRIMARY KEY,
    created_at timestamptz NOT NULL DEFAULT CURRENT_TIMESTAMP)`);
  await knex.raw(
    "INSERT INTO usage_requests (request_id, created_at) SELECT request_id, created_at FROM usage_events",
  );

  const checks = await constraintsOf(knex, "usage_events", ["c"]);
  const foreign = await constraintsOf(knex, "usage_events", ["f"]);
  const indexes = await plainIndexesOf(knex, "usage_events");
  const { rows } = await knex.raw<{ rows: Array<{ last: Date | null }> }>(
    "SELECT max(created_at) AS last FROM usage_events",
  );
  const last = rows[0]!.last;

  await knex.raw(`ALTER TABLE usage_events RENAME TO ${LEGACY}`);
  for (const index of indexes)
    await knex.raw(`ALTER INDEX ${index.name} RENAME TO ${index.name.replace("usage_events", LEGACY)}`);
  await knex.raw(
    `CREATE TABLE usage_events (LIKE ${LEGACY} INCLUDING DEFAULTS INCLUDING STORAGE) PARTITION BY RANGE (created_at)`,
  );
  await knex.raw("ALTER SEQUENCE usage_events_id_seq OWNED BY usage_events.id");
  // pg_get_constraintdef says NOT VALID where a check was added so: it binds new rows only, as before.
  for (const c of checks) await knex.raw(`ALTER TABLE usage_events ADD CONSTRAINT ${c.conname} ${c.def}`);

  // The month after the later of the last row and now: the legacy partition keeps taking rows
  // until then, so nothing lands in the DEFAULT partition meanwhile.
  const now = new Date();
  const later = new Date(Math.max(last?.getTime() ?? 0, now.getTime()));
  const bound = new Date(Date.UTC(later.getUTCFullYear(), later.getUTCMonth() + 1, 1));
  let month = bound;
  if (last === null) {
    await knex.raw(`DROP TABLE ${LEGACY}`);
    month = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), 1));
  } else {
    await knex.raw(`ALTER TABLE ${LEGACY} DROP CONSTRAINT usage_events_pkey`);
    await knex.raw(`ALTER TABLE ${LEGACY} DROP CONSTRAINT usage_events_request_id_unique`);
    await knex.raw(
      `ALTER TABLE ${LEGACY} ADD CONSTRAINT ${LEGACY}_bound CHECK (created_at < '${utc(bound)}')`,
    );
    await knex.raw(
      `ALTER TABLE usage_events ATTACH PARTITION ${LEGACY} FOR VALUES FROM (MINVALUE) TO ('${utc(bound)}')`,
    );
    await knex.raw(`ALTER TABLE ${LEGACY} DROP CONSTRAINT ${LEGACY}_bound`);
  }
  // Matching indexes of the legacy partition are attached, not rebuilt; id and request_id (unique
  // there) are built on it once.
  for (const index of indexes) await knex.raw(index.def);
  await knex.raw("CREATE INDEX usage_events_id_index ON usage_events (id)");
  await knex.raw("CREATE INDEX usage_events_request_id_index ON usage_events (request_id)");
  // The legacy partition's own foreign keys match, so they are attached without a scan.
  for (const f of foreign) await knex.raw(`ALTER TABLE usage_events ADD CONSTRAINT ${f.conname} ${f.def}`);
  await knex.raw("CREATE TABLE usage_events_default PARTITION OF usage_events DEFAULT");
  // Three months ahead, as src/billing/ledger/partitions.ts keeps them from now on.
  const ahead = Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + 3, 1);
  for (
    ;
    month.getTime() <= ahead;
    month = new Date(Date.UTC(month.getUTCFullYear(), month.getUTCMonth() + 1, 1))
  ) {
    const next = new Date(Date.UTC(month.getUTCFullYear(), month.getUTCMonth() + 1, 1));
    const name = `usage_events_${month.toISOString().slice(0, 7).replace("-", "")}`;
    await knex.raw(
      `CREATE TABLE ${name} PARTITION OF usage_events FOR VALUES FROM ('${utc(month)}') TO ('${utc(next)}')`,
    );
  }
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw("LOCK TABLE usage_events IN ACCESS EXCLUSIVE MODE");
  const checks = await constraintsOf(knex, "usage_events", ["c"]);
  const foreign = await constraintsOf(knex, "usage_events", ["f"]);
  const indexes = (await plainIndexesOf(knex, "usage_events")).filter(
    (i) => i.name !== "usage_events_id_index" && i.name !== "usage_events_request_id_index",
  );
  await knex.raw("ALTER TABLE usage_events RENAME TO usage_events_partitioned");
  await knex.raw(
    "CREATE TABLE usage_events (LIKE usage_events_partitioned INCLUDING DEFAULTS INCLUDING STORAGE)",
  );
  await knex.raw("INSERT INTO usage_events SELECT * FROM usage_events_partitioned ORDER BY id");
  await knex.raw("ALTER SEQUENCE usage_events_id_seq OWNED BY usage_events.id");
  await knex.raw("DROP TABLE usage_events_partitioned");
  await knex.raw("ALTER TABLE usage_events ADD CONSTRAINT usage_events_pkey PRIMARY KEY (id)");
  await knex.raw(
    "ALTER TABLE usage_events ADD CONSTRAINT usage_events_request_id_unique UNIQUE (request_id)",
  );
  for (const c of [...checks, ...foreign])
    await knex.raw(`ALTER TABLE usage_events ADD CONSTRAINT ${c.conname} ${c.def}`);
  for (const index of indexes) await knex.raw(index.def);
  await knex.raw("DROP TABLE usage_requests");
}
