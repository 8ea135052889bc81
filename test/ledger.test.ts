import { beforeAll, describe, expect, it } from "vitest";
import { useStack } from "./helpers/stack.js";
import { recordUsage, recordUsageRows, type UsageRow } from "../src/billing/ledger/ledger.js";
import { usageRow } from "./helpers/usage-row.js";
import { grantCredits, zeroGrant } from "../src/billing/credits/grants.js";
import { lockCreditAccount } from "../src/billing/credits/account.js";
import { waitFor } from "./helpers/wait.js";
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

describe("credits paid in a group", () => {
  it("draws each row's price from the grant expiring first, across grants, never from an expired one, one entry per request and grant", async () => {
    const customer = (await stack.customer()).customerId;
    const day = 86_400_000;
    const grant = async (amountMicros: number, expiresAt: Date | null) =>
      (await grantCredits(stack.db, { customerId: customer, amountMicros, source: "manual", expiresAt }))
        .grant.id;
    const later = await grant(50, new Date(Date.now() + 2 * day));
    const soonest = await grant(30, new Date(Date.now() + day));
    const never = await grant(1_000, null);
    const expired = await grant(500, new Date(Date.now() - day));
    // One token costs one micro, so each 40-token row costs 40 micros, all past a zero allowance.
    const priced = { promptTokens: 30, completionTokens: 10, billableTokens: 40 };
    const pricing = { includedTokens: 0, overagePer1kMicros: 1_000 };
    const rows = [1, 2, 3].map((i) =>
      usageRow(`req_drawn_${i}_${customer}`, customer, { ...priced, pricing }),
    );

    const written = await recordUsageRows(stack.db, rows);

    expect(
      written.map((r) => [r.charge.chargeMicros, r.charge.creditMicros, r.charge.creditBalanceMicros]),
    ).toEqual([
      [40, 40, 1_040],
      [40, 40, 1_000],
      [40, 40, 960],
    ]);
    const entries = await stack
      .db("credit_entries")
      .where({ customer_id: customer, kind: "consumption" })
      .orderBy("id")
      .select("request_id", "grant_id", "amount_micros");
    expect(entries).toEqual([
      { request_id: rows[0]!.requestId, grant_id: soonest, amount_micros: -30 },
      { request_id: rows[0]!.requestId, grant_id: later, amount_micros: -10 },
      { request_id: rows[1]!.requestId, grant_id: later, amount_micros: -40 },
      { request_id: rows[2]!.requestId, grant_id: never, amount_micros: -40 },
    ]);
    const remaining = Object.fromEntries(
      (await stack.db("credit_grants").where({ customer_id: customer }).select("id", "remaining_micros")).map(
        (g: { id: number; remaining_micros: number }) => [g.id, g.remaining_micros],
      ),
    );
    expect(remaining).toEqual({ [later]: 0, [soonest]: 0, [never]: 960, [expired]: 500 });
    const consumptions = await stack
      .db("credit_consumptions")
      .where({ customer_id: customer })
      .orderBy("request_id")
      .select("requested_micros", "covered_micros");
    expect(consumptions).toEqual(Array(3).fill({ requested_micros: 40, covered_micros: 40 }));
    const ledger = await stack
      .db("usage_events")
      .where({ customer_id: customer })
      .select("charge_micros", "credit_tokens", "credit_micros");
    expect(ledger).toEqual(Array(3).fill({ charge_micros: 40, credit_tokens: 40, credit_micros: 40 }));
    const [hourly] = await stack
      .db("usage_hourly")
      .where({ customer_id: customer })
      .sum({ credit: "credit_micros", charge: "charge_micros", tokens: "credit_tokens" });
    expect(hourly).toEqual({ credit: "120", charge: "120", tokens: "120" });
  });

  it("pays a row in part when the balance runs out, and nothing after it", async () => {
    const customer = (await stack.customer()).customerId;
    await grantCredits(stack.db, { customerId: customer, amountMicros: 25, source: "manual" });
    const priced = { promptTokens: 30, completionTokens: 10, billableTokens: 40 };
    const pricing = { includedTokens: 0, overagePer1kMicros: 1_000 };
    const rows = [1, 2].map((i) => usageRow(`req_part_${i}_${customer}`, customer, { ...priced, pricing }));

    const written = await recordUsageRows(stack.db, rows);

    expect(written.map((r) => r.charge)).toEqual([
      {
        chargeMicros: 40,
        creditTokens: 25,
        creditMicros: 25,
        creditBalanceMicros: 0,
        allowanceRemainingTokens: null,
      },
      {
        chargeMicros: 40,
        creditTokens: 0,
        creditMicros: 0,
        creditBalanceMicros: 0,
        allowanceRemainingTokens: null,
      },
    ]);
    expect(await stack.db("credit_consumptions").where({ customer_id: customer })).toHaveLength(1);
  });

  it("reads the grants only once it holds the account: a void committed while it waited is not drawn from", async () => {
    const customer = (await stack.customer()).customerId;
    const voided = (
      await grantCredits(stack.db, { customerId: customer, amountMicros: 100, source: "manual" })
    ).grant.id;
    const kept = (
      await grantCredits(stack.db, { customerId: customer, amountMicros: 1_000, source: "manual" })
    ).grant.id;
    const priced = { promptTokens: 30, completionTokens: 10, billableTokens: 40 };
    const pricing = { includedTokens: 0, overagePer1kMicros: 1_000 };

    // An operator voids the first grant: its transaction holds the account while the row is written.
    const voiding = await stack.db.transaction();
    await lockCreditAccount(voiding, customer);
    await zeroGrant(voiding, voided, "void");
    const writing = recordUsageRows(stack.db, [
      usageRow(`req_void_${customer}`, customer, { ...priced, pricing }),
    ]);
    await waitFor(
      async () => {
        const { rows } = await stack.db.raw<{ rows: Array<{ n: number }> }>(
          `SELECT count(*)::int AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()`,
        );
        return rows[0]!.n > 0;
      },
      { what: "the usage write waiting for the account" },
    );
    await voiding.commit();

    const [written] = await writing;
    expect(written!.charge).toMatchObject({ creditMicros: 40, creditBalanceMicros: 960 });
    const entries = await stack
      .db("credit_entries")
      .where({ customer_id: customer, kind: "consumption" })
      .select("grant_id", "amount_micros");
    expect(entries).toEqual([{ grant_id: kept, amount_micros: -40 }]);
  });
});
