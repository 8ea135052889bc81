import type { Db } from "../../platform/db.js";
import { PlanInputError } from "../../errors.js";

/**
 * `prepaid`: served only while credits pay for it — a chat reserves its worst-case price from the
 * customer's credits before it runs (src/billing/credits/counter.ts) and is refused without them.
 */
export type PlanKind = "usage" | "tiered" | "hybrid" | "prepaid";

export interface Plan {
  id: string;
  name: string;
  kind: PlanKind;
  baseFeeMicros: number;
  includedTokens: number;
  overagePer1kMicros: number;
  hardLimitTokens: number | null;
}

/** The seed's three pricing models, plus a free plan with a hard limit. */
export const DEFAULT_PLANS: readonly Plan[] = [
  {
    id: "usage",
    name: "Pay as you go",
    kind: "usage",
    baseFeeMicros: 0,
    includedTokens: 0,
    overagePer1kMicros: 2_000,
    hardLimitTokens: null,
  },
  {
    id: "pro",
    name: "Pro",
    kind: "tiered",
    baseFeeMicros: 20_000_000,
    includedTokens: 2_000_000,
    overagePer1kMicros: 1_500,
    hardLimitTokens: null,
  },
  {
    id: "team",
    name: "Team",
    kind: "hybrid",
    baseFeeMicros: 50_000_000,
    includedTokens: 0,
    overagePer1kMicros: 1_000,
    hardLimitTokens: null,
  },
  {
    id: "free",
    name: "Free",
    kind: "usage",
    baseFeeMicros: 0,
    includedTokens: 100_000,
    overagePer1kMicros: 0,
    hardLimitTokens: 100_000,
  },
];

export type PlanRow = {
  id: string;
  name: string;
  kind: PlanKind;
  base_fee_micros: number;
  included_tokens: number;
  overage_per_1k_micros: number;
  hard_limit_tokens: number | null;
};

/** Each Plan field and its `plans` column: the only place the two names are paired. */
const COLUMN_OF = {
  id: "id",
  name: "name",
  kind: "kind",
  baseFeeMicros: "base_fee_micros",
  includedTokens: "included_tokens",
  overagePer1kMicros: "overage_per_1k_micros",
  hardLimitTokens: "hard_limit_tokens",
} as const satisfies { [K in keyof Plan]: keyof PlanRow };
const FIELDS = Object.keys(COLUMN_OF) as Array<keyof Plan>;

/** The `plans` columns, qualified by a table alias, for queries that join plans. */
export function planColumns(alias: string): string[] {
  return FIELDS.map((field) => `${alias}.${COLUMN_OF[field]}`);
}

export function planFromRow(row: PlanRow): Plan {
  return Object.fromEntries(FIELDS.map((field) => [field, row[COLUMN_OF[field]]])) as unknown as Plan;
}

/** The columns of the fields given; undefined fields are left out, so an update changes only those. */
function planToRow(plan: Partial<Plan>): Partial<PlanRow> {
  return Object.fromEntries(
    FIELDS.filter((field) => plan[field] !== undefined).map((field) => [COLUMN_OF[field], plan[field]]),
  );
}

/** Inserts the default plans that do not exist yet; never overwrites an operator's edits. */
export async function seedDefaultPlans(db: Db): Promise<void> {
  await db("plans").insert(DEFAULT_PLANS.map(planToRow)).onConflict("id").ignore();
}

export async function findPlan(db: Db, id: string): Promise<Plan | undefined> {
  const row: PlanRow | undefined = await db("plans").where({ id }).first();
  return row && planFromRow(row);
}

export async function listPlans(db: Db): Promise<Plan[]> {
  const rows: PlanRow[] = await db("plans").orderBy("id");
  return rows.map(planFromRow);
}

/** List price of one request's tokens at the plan's per-1K rate, rounded half up. */
export function listPriceMicros(plan: Pick<Plan, "overagePer1kMicros">, billableTokens: number): number {
  return Math.floor((2 * billableTokens * plan.overagePer1kMicros + 1000) / 2000);
}

/** Plans change rarely and are read on every job: cache them briefly. */
export function createPlanCache(db: Db, ttlMs = 10_000) {
  const cache = new Map<string, { plan: Plan; expires: number }>();
  return {
    async get(id: string): Promise<Plan> {
      const hit = cache.get(id);
      if (hit && hit.expires > Date.now()) return hit.plan;
      const plan = await findPlan(db, id);
      if (!plan) throw new Error(`no plan "${id}"`);
      cache.set(id, { plan, expires: Date.now() + ttlMs });
      return plan;
    },
  };
}

/**
 * Creates a plan or changes the given fields of an existing one. New plans need a name and kind.
 * Changes apply to usage priced from then on; rows already written keep the plan id that priced them.
 */
export async function upsertPlan(db: Db, input: Partial<Plan> & { id: string }): Promise<Plan> {
  const { id } = input;
  const given = planToRow({ ...input, id: undefined });
  return db.transaction(async (trx) => {
    const existing = await trx("plans").where({ id }).forUpdate().first("id");
    if (existing) {
      const [row] = await trx("plans")
        .where({ id })
        .update({ ...given, updated_at: trx.fn.now() })
        .returning("*");
      return planFromRow(row);
    }
    if (!input.name || !input.kind) throw new PlanInputError("a new plan needs --name and --kind");
    const [row] = await trx("plans")
      .insert({ id, ...given })
      .returning("*");
    return planFromRow(row);
  });
}
