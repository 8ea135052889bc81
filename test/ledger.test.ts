import { beforeAll, describe, expect, it } from "vitest";
import { useStack } from "./helpers/stack.js";
import { recordUsage, recordUsageRows, type UsageRow } from "../src/billing/ledger/ledger.js";
import { usageRow } from "./helpers/usage-row.js";
import { grantCredits } from "../src/billing/credits/grants.js";
import { overageTokens } from "../src/billing/ledger/charges.js";
import { listPriceMicros } from "../src/billing/pricing/plans.js";

const stack = useStack({ worker: false });
let customerId: string;

beforeAll(async () => {
  customerId = (await stack.customer()).customerId;
});

const row = (requestId: string, extra: Partial<UsageRow> = {}): UsageRow =>
  usageRow(requestId, customerId, extra);

describe("recordUsage under concurrency (group commit)", () => {
  it("writes each request id once and tells exactly one caller per id that it inserted", async () => {
    const ids = Array.from({ length: 300 }, (_, i) => `req_group_${i}`);
    // Every id twice, at once: the duplicates land in the same or in a later group.
    const results = await Promise.all([...ids, ...ids].map((id) => recordUsage(stack.db, row(id))));

    expect(results.filter((r) => r.inserted)).toHaveLength(300);
    expect(await stack.db("usage_events").where({ customer_id: customerId })).toHaveLength(300);
    expect((await recordUsage(stack.db, row("req_group_7"))).inserted).toBe(false);
  });

  it("fails only the bad row of a group; its neighbours are written", async () => {
    const good = Array.from({ length: 20 }, (_, i) => recordUsage(stack.db, row(`req_mixed_${i}`)));
    // cached tokens above prompt tokens violates the ledger's check constraint.
    const bad = recordUsage(stack.db, row("req_mixed_bad", { cachedTokens: 99 }));

    await expect(bad).rejects.toThrow(/usage_events_taxonomy_check/);
    expect((await Promise.all(good)).map((r) => r.inserted)).toEqual(Array(20).fill(true));
    expect(await stack.db("usage_events").where({ request_id: "req_mixed_bad" })).toHaveLength(0);
  });
});

describe("recordUsage pricing in a group", () => {
  it("prices each row on the period's tokens before it, across the allowance, and pays credit customers from credits", async () => {
    const plain = (await stack.customer()).customerId;
    const withCredits = (await stack.customer()).customerId;
    await grantCredits(stack.db, { customerId: withCredits, amountMicros: 1_000, source: "manual" });
    const pricing = { includedTokens: 1_000, overagePer1kMicros: 3_333 };
    // 60 rows of 37 tokens for each customer, at once: they cross the 1,000-token allowance mid-group.
    const rows = Array.from({ length: 120 }, (_, i) =>
      usageRow(`req_priced_${i}`, i % 2 ? withCredits : plain, { billableTokens: 37, pricing }),
    );
    const recorded = await Promise.all(rows.map((r) => recordUsage(stack.db, r)));

    for (const customer of [plain, withCredits]) {
      const written = await stack
        .db("usage_events")
        .where({ customer_id: customer })
        .orderBy("id")
        .select("request_id", "charge_micros", "credit_micros", "credit_tokens");
      expect(written).toHaveLength(60);
      let before = 0;
      for (const w of written) {
        const charge = recorded[rows.findIndex((r) => r.requestId === w.request_id)]!.charge;
        const expected = listPriceMicros(pricing, overageTokens(pricing.includedTokens, before, 37));
        expect(Number(w.charge_micros)).toBe(expected);
        expect(charge.chargeMicros).toBe(expected);
        expect(charge.allowanceRemainingTokens).toBe(Math.max(0, 1_000 - before - 37));
        expect(charge.creditMicros).toBe(Number(w.credit_micros));
        before += 37;
      }
      const [totals] = await stack.db("usage_period_totals").where({ customer_id: customer });
      expect(Number(totals.billable_tokens)).toBe(60 * 37);
      const credited = written.reduce((n, w) => n + Number(w.credit_micros), 0);
      if (customer === plain) expect(credited).toBe(0);
      // Credits pay whole tokens of the credit customer's overage, up to the 1,000 µ$ granted.
      else expect(credited).toBeGreaterThan(1_000 - 4);
      expect(credited).toBeLessThanOrEqual(1_000);
    }
  });
});

describe("recordUsageRows (ingested batches)", () => {
  it("returns each row it inserted once, pays credit customers' rows from credits, and nothing on a retry", async () => {
    const plain = (await stack.customer()).customerId;
    const withCredits = (await stack.customer()).customerId;
    await grantCredits(stack.db, { customerId: withCredits, amountMicros: 500, source: "manual" });
    const at = new Date(Date.now() - 3_600_000);
    const rows = Array.from({ length: 20 }, (_, i) =>
      usageRow(`req_rows_${i}`, i % 2 ? withCredits : plain, { createdAt: at, endUser: `u${i % 3}` }),
    );
    // A request id twice in one batch is written once.
    const first = await recordUsageRows(stack.db, [...rows, rows[0]!]);

    expect(first.map((r) => r.requestId).sort()).toEqual(rows.map((r) => r.requestId).sort());
    for (const r of first) {
      expect(r.createdAt.getTime()).toBe(at.getTime());
      expect(r.billableTokens).toBe(15);
      expect(r.endUser).toBe(`u${Number(r.requestId.split("_")[2]) % 3}`);
    }
    const paid = first.filter((r) => r.charge.creditMicros > 0);
    expect(paid.length).toBeGreaterThan(0);
    expect(paid.every((r) => rows.find((x) => x.requestId === r.requestId)!.customerId === withCredits)).toBe(
      true,
    );
    expect(await recordUsageRows(stack.db, rows)).toEqual([]);
    expect(await stack.db("usage_events").whereIn("customer_id", [plain, withCredits])).toHaveLength(20);
  });
});
