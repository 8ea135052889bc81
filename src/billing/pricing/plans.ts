import type { Db } from "../../platform/db.js";
import { PlanInputError } from "../../errors.js";

export type PlanKind = "usage" | "tiered" | "hybrid";

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

export function planFromRow(row: PlanRow): Plan {
  return {
    id: row.id,
    name: row.name,
    kind: row.kind,
    baseFeeMicros: row.base_fee_micros,
    includedTokens: row.included_tokens,
    overagePer1kMicros: row.overage_per_1k_micros,
    hardLimitTokens: row.hard_limit_tokens,
  };
}

/** Inserts the default plans that do not exist yet; never overwrites an operator's edits. */
export async function seedDefaultPlans(db: Db): Promise<void> {
  await db("plans")
    .insert(
      DEFAULT_PLANS.map((p) => ({
        id: p.id,
        name: p.name,
        kind: p.kind,
        base_fee_micros: p.baseFeeMicros,
        included_tokens: p.includedTokens,
        overage_per_1k_micros: p.overagePer1kMicros,
        hard_limit_tokens: p.hardLimitTokens,
      })),
    )
    .onConflict("id")
    .ignore();
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
      const row = await db("plans").where({ id }).first();
      if (!row) throw new Error(`no plan "${id}"`);
      const plan = planFromRow(row);
      cache.set(id, { plan, expires: Date.now() + ttlMs });
      return plan;
    },
  };
}

export async function listPlans(db: Db): Promise<Plan[]> {
  const rows: PlanRow[] = await db("plans").orderBy("id");
  return rows.map(planFromRow);
}

/**
 * Creates a plan or changes the given fields of an existing one. New plans need a name and kind.
 * Changes apply to usage priced from then on; rows already written keep the plan id that priced them.
 */
export async function upsertPlan(db: Db, input: Partial<Plan> & { id: string }): Promise<Plan> {
  const columns = {
    name: input.name,
    kind: input.kind,
    base_fee_micros: input.baseFeeMicros,
    included_tokens: input.includedTokens,
    overage_per_1k_micros: input.overagePer1kMicros,
    hard_limit_tokens: input.hardLimitTokens,
  };
  const given = Object.fromEntries(Object.entries(columns).filter(([, v]) => v !== undefined));
  return db.transaction(async (trx) => {
    const existing = await trx("plans").where({ id: input.id }).forUpdate().first("id");
    if (existing) {
      const [row] = await trx("plans")
        .where({ id: input.id })
        .update({ ...given, updated_at: trx.fn.now() })
        .returning("*");
      return planFromRow(row);
    }
    if (!input.name || !input.kind) throw new PlanInputError("a new plan needs --name and --kind");
    const [row] = await trx("plans")
      .insert({ id: input.id, ...given })
      .returning("*");
    return planFromRow(row);
  });
}
