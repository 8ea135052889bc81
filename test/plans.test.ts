import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  DEFAULT_PLANS,
  findPlan,
  listPlans,
  seedDefaultPlans,
  upsertPlan,
} from "../src/billing/pricing/plans.js";
import { PlanInputError } from "../src/errors.js";
import { authenticateKey, createApiKey, createCustomer } from "../src/billing/customers/customers.js";
import { createTestDatabase } from "./helpers/db.js";

let database: Awaited<ReturnType<typeof createTestDatabase>>;
beforeAll(async () => {
  database = await createTestDatabase();
});
afterAll(async () => {
  await database?.drop();
});

describe("plans", () => {
  it("seeds the default plans and reads them back field for field", async () => {
    expect(await listPlans(database.db)).toEqual([...DEFAULT_PLANS].sort((a, b) => a.id.localeCompare(b.id)));
    expect(await findPlan(database.db, "pro")).toEqual(DEFAULT_PLANS.find((p) => p.id === "pro"));
    expect(await findPlan(database.db, "nope")).toBeUndefined();
  });

  it("changes only the fields given, clears a hard limit with null, and never lets the seed overwrite", async () => {
    const before = (await findPlan(database.db, "free"))!;
    const changed = await upsertPlan(database.db, {
      id: "free",
      overagePer1kMicros: 3_000,
      hardLimitTokens: null,
    });
    expect(changed).toEqual({ ...before, overagePer1kMicros: 3_000, hardLimitTokens: null });
    await seedDefaultPlans(database.db);
    expect(await findPlan(database.db, "free")).toEqual(changed);
  });

  it("creates a plan only with a name and kind", async () => {
    await expect(upsertPlan(database.db, { id: "bare", includedTokens: 5 })).rejects.toBeInstanceOf(
      PlanInputError,
    );
    const plan = await upsertPlan(database.db, {
      id: "startup",
      name: "Startup",
      kind: "tiered",
      baseFeeMicros: 10_000_000,
      includedTokens: 500_000,
      overagePer1kMicros: 1_800,
      hardLimitTokens: 2_000_000,
    });
    expect(await findPlan(database.db, "startup")).toEqual(plan);
  });

  it("gives an authenticated key its customer's whole plan", async () => {
    const customer = await createCustomer(database.db, { name: "Plan Co", planId: "team" });
    const { key } = await createApiKey(database.db, customer.id);
    const auth = await authenticateKey(database.db, key);
    expect(auth?.plan).toEqual(await findPlan(database.db, "team"));
  });
});
