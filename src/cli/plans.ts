import { listPlans, upsertPlan, type Plan, type PlanKind } from "../billing/pricing/plans.js";
import { formatMicros } from "../billing/pricing/money.js";
import { optionalFlag, requireFlag, type CliContext } from "./context.js";
import { PlanInputError, UsageError } from "../errors.js";

const KINDS: readonly PlanKind[] = ["usage", "tiered", "hybrid", "prepaid"];

function describePlan(p: Plan): string {
  const limit = p.hardLimitTokens === null ? "no hard limit" : `hard limit ${p.hardLimitTokens} tokens`;
  return `${p.id.padEnd(12)} ${p.kind.padEnd(7)} base ${formatMicros(p.baseFeeMicros, 2)}, ${p.includedTokens} tokens included, overage ${p.overagePer1kMicros} µ$/1K, ${limit}  (${p.name})`;
}

export async function plansList(ctx: CliContext): Promise<void> {
  const plans = await listPlans(ctx.db());
  ctx.print(plans.map(describePlan).join("\n") || "no plans", plans);
}

/** Non-negative integer flag, or undefined when absent; "none" clears a nullable one. */
function intFlag(ctx: CliContext, name: string, nullable = false): number | null | undefined {
  const value = optionalFlag(ctx, name);
  if (value === undefined) return undefined;
  if (nullable && value === "none") return null;
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(Number(value)))
    throw new UsageError(`--${name} must be a non-negative integer${nullable ? ' or "none"' : ""}`);
  return Number(value);
}

export async function plansUpsert(ctx: CliContext): Promise<void> {
  const kind = optionalFlag(ctx, "kind");
  if (kind !== undefined && !KINDS.includes(kind as PlanKind))
    throw new UsageError(`--kind must be one of ${KINDS.join(", ")}`);
  const input = {
    id: requireFlag(ctx, "id"),
    name: optionalFlag(ctx, "name"),
    kind: kind as PlanKind | undefined,
    baseFeeMicros: intFlag(ctx, "base-fee-micros") ?? undefined,
    includedTokens: intFlag(ctx, "included-tokens") ?? undefined,
    overagePer1kMicros: intFlag(ctx, "overage-per-1k-micros") ?? undefined,
    hardLimitTokens: intFlag(ctx, "hard-limit-tokens", true),
  };
  try {
    const plan = await upsertPlan(ctx.db(), input);
    ctx.print(`saved plan ${describePlan(plan)}`, plan);
  } catch (err) {
    if (err instanceof PlanInputError) throw new UsageError(err.message);
    throw err;
  }
}
