import type { Db } from "../../platform/db.js";
import { createCustomer } from "./customers.js";
import { recordUsageRows, type UsageRow } from "../ledger/ledger.js";
import { calendarMonth } from "../ledger/periods.js";
import { findPlan, listPriceMicros, seedDefaultPlans } from "../pricing/plans.js";
import { priceFor, providerCostMicros } from "../pricing/prices.js";

type Profile = {
  slug: string;
  name: string;
  planId: string;
  model: string;
  requests: number;
  prompt: number;
  cached: number;
  completion: number;
  reasoning: number;
};

// One customer per plan kind, a profitable and an unprofitable power user among them.
const PROFILES: readonly Profile[] = [
  {
    slug: "acme-notes",
    name: "Acme Notes",
    planId: "usage",
    model: "gpt-4o-mini",
    requests: 400,
    prompt: 1_500,
    cached: 0,
    completion: 500,
    reasoning: 0,
  },
  {
    slug: "briefly",
    name: "Briefly AI",
    planId: "pro",
    model: "gpt-4o-mini",
    requests: 300,
    prompt: 2_000,
    cached: 500,
    completion: 600,
    reasoning: 0,
  },
  {
    slug: "codewright",
    name: "Codewright (power user)",
    planId: "pro",
    model: "gpt-4o",
    requests: 2_000,
    prompt: 6_000,
    cached: 2_000,
    completion: 1_500,
    reasoning: 0,
  },
  {
    slug: "deep-research",
    name: "Deep Research Co",
    planId: "team",
    model: "o4-mini",
    requests: 1_000,
    prompt: 3_000,
    cached: 0,
    completion: 4_000,
    reasoning: 3_000,
  },
  {
    slug: "hobbyist",
    name: "Hobbyist",
    planId: "free",
    model: "gpt-4o-mini",
    requests: 60,
    prompt: 800,
    cached: 0,
    completion: 400,
    reasoning: 0,
  },
];

/**
 * Demo customers with usage spread over the current month so far. Safe to run again: customers are
 * found by email and usage rows have deterministic request ids.
 */
export async function seedDemoData(
  db: Db,
  now: Date = new Date(),
): Promise<{ customers: number; rows: number }> {
  await seedDefaultPlans(db);
  const start = calendarMonth(now).start.getTime();
  let inserted = 0;
  for (const p of PROFILES) {
    const email = `${p.slug}@demo.meterline.dev`;
    const existing = await db("customers").where({ email }).first("id");
    const customerId =
      existing?.id ?? (await createCustomer(db, { name: p.name, email, planId: p.planId })).id;
    const plan = (await findPlan(db, p.planId))!;
    const price = priceFor(p.model)!;
    const tokens = {
      promptTokens: p.prompt,
      cachedTokens: p.cached,
      cacheWriteTokens: 0,
      completionTokens: p.completion,
      reasoningTokens: p.reasoning,
    };
    const rows: UsageRow[] = Array.from({ length: p.requests }, (_, i) => ({
      requestId: `demo_${p.slug}_${new Date(start).toISOString().slice(0, 7)}_${i}`,
      customerId,
      model: p.model,
      ...tokens,
      billableTokens: p.prompt + p.completion,
      providerCostMicros: providerCostMicros(tokens, price),
      priceMicros: listPriceMicros(plan, p.prompt + p.completion),
      pricing: plan,
      source: "provider",
      planId: plan.id,
      priceModel: price.model,
      createdAt: new Date(start + Math.floor(((now.getTime() - start) * i) / p.requests)),
    }));
    for (let i = 0; i < rows.length; i += 500)
      inserted += (await recordUsageRows(db, rows.slice(i, i + 500))).length;
  }
  return { customers: PROFILES.length, rows: inserted };
}
