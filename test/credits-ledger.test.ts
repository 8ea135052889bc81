import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase } from "./helpers/db.js";
import { createDb, type Db } from "../src/platform/db.js";
import { createCustomer } from "../src/billing/customers/customers.js";
import { consumeCredits } from "../src/billing/credits/consume.js";
import { grantCredits, voidGrant } from "../src/billing/credits/grants.js";
import { expireCredits } from "../src/billing/credits/expiry.js";
import { creditBalance, creditLedger } from "../src/billing/credits/balance.js";
import { migrationSource } from "../migrations/index.js";

let database: Awaited<ReturnType<typeof createTestDatabase>>;
/** A pool wide enough for 50 transactions at once, so the concurrency cases are concurrent. */
let db: Db;

beforeAll(async () => {
  database = await createTestDatabase();
  db = createDb(database.url, { max: 50 });
});
afterAll(async () => {
  await db?.destroy();
  await database?.drop();
});

const newCustomer = async () => (await createCustomer(db, { name: "credits" })).id;
const DAY = 86_400_000;
const inDays = (days: number) => new Date(Date.now() + days * DAY);
const consume = (customerId: string, requestId: string, amountMicros: number) =>
  db.transaction((trx) => consumeCredits(trx, { customerId, requestId, amountMicros }));
const grant = (
  customerId: string,
  amountMicros: number,
  extra: { expiresAt?: Date; reference?: string } = {},
) => grantCredits(db, { customerId, amountMicros, source: "manual", ...extra });
const remaining = async (grantId: number) =>
  (await db("credit_grants").where({ id: grantId }).first("remaining_micros")).remaining_micros as number;
const ledgerSum = async (customerId: string) =>
  Number(
    (await db("credit_entries").where({ customer_id: customerId }).sum("amount_micros as s").first())?.s ?? 0,
  );

describe("consumeCredits", () => {
  it("draws from the grant that expires first, no expiry last, ties by grant order, across grants", async () => {
    const customerId = await newCustomer();
    const never = (await grant(customerId, 5_000)).grant;
    const late = (await grant(customerId, 1_000, { expiresAt: inDays(30) })).grant;
    const soonA = (await grant(customerId, 1_000, { expiresAt: inDays(2) })).grant;
    const soonB = (await grant(customerId, 1_000, { expiresAt: inDays(2) })).grant;
    await db("credit_grants").where({ id: soonB.id }).update({ expires_at: soonA.expiresAt });

    expect(await consume(customerId, "req_fifo_1", 1_500)).toEqual({
      requestId: "req_fifo_1",
      requestedMicros: 1_500,
      coveredMicros: 1_500,
      remainderMicros: 0,
    });
    expect([await remaining(soonA.id), await remaining(soonB.id)]).toEqual([0, 500]);
    await consume(customerId, "req_fifo_2", 2_000);
    expect([await remaining(soonB.id), await remaining(late.id), await remaining(never.id)]).toEqual([
      0, 0, 4_500,
    ]);
    const entries = await creditLedger(db, customerId, { limit: 3 });
    expect(entries.map((e) => [e.kind, e.grantId, e.requestId, e.amountMicros])).toEqual([
      ["consumption", never.id, "req_fifo_2", -500],
      ["consumption", late.id, "req_fifo_2", -1_000],
      ["consumption", soonB.id, "req_fifo_2", -500],
    ]);
    expect(await creditLedger(db, customerId, { limit: 2, before: entries[2]!.id })).toHaveLength(2);
  });

  it("covers at most the balance and leaves the remainder to the invoice; a request consumes once", async () => {
    const customerId = await newCustomer();
    await grant(customerId, 700);
    const first = await consume(customerId, "req_once", 1_000);
    expect(first).toMatchObject({ coveredMicros: 700, remainderMicros: 300 });
    await grant(customerId, 5_000);
    // A repeat of the request (a retried job) gets what the first call recorded, and draws nothing.
    expect(await consume(customerId, "req_once", 1_000)).toEqual(first);
    const repeats = await Promise.all(
      Array.from({ length: 5 }, () => consume(customerId, "req_once_b", 400)),
    );
    expect(new Set(repeats.map((r) => r.coveredMicros))).toEqual(new Set([400]));
    expect(await creditBalance(db, customerId)).toBe(4_600);
    expect(await db("credit_entries").where({ request_id: "req_once_b" })).toHaveLength(1);
  });

  it("50 concurrent consumers against a balance for about ten never overdraw it", async () => {
    const customerId = await newCustomer();
    await grant(customerId, 6_000, { expiresAt: inDays(1) });
    await grant(customerId, 4_500);
    const results = await Promise.all(
      Array.from({ length: 50 }, (_, i) => consume(customerId, `req_race_${i}`, 1_000)),
    );
    const covered = results.reduce((sum, r) => sum + r.coveredMicros, 0);
    expect(covered).toBe(10_500);
    expect(results.filter((r) => r.coveredMicros === 1_000)).toHaveLength(10);
    expect(results.filter((r) => r.coveredMicros === 0)).toHaveLength(39);
    expect(await creditBalance(db, customerId)).toBe(0);
    expect(await ledgerSum(customerId)).toBe(0);
  });

  it("does not draw from a grant past its expiry before the sweep runs", async () => {
    const customerId = await newCustomer();
    const { grant: old } = await grant(customerId, 1_000, { expiresAt: inDays(1) });
    await db("credit_grants")
      .where({ id: old.id })
      .update({ expires_at: inDays(-1) });
    expect(await consume(customerId, "req_after_expiry", 500)).toMatchObject({ coveredMicros: 0 });
    expect(await creditBalance(db, customerId)).toBe(0);
  });
});

describe("grantCredits", () => {
  it("grants once per reference, also under 5 concurrent deliveries", async () => {
    const customerId = await newCustomer();
    const first = await grant(customerId, 2_000, { reference: "cs_test_once" });
    const again = await grant(customerId, 2_000, { reference: "cs_test_once" });
    expect(first.created).toBe(true);
    expect(again).toEqual({ grant: first.grant, created: false });

    const racing = await Promise.all(
      Array.from({ length: 5 }, () => grant(customerId, 3_000, { reference: "pi_test_race" })),
    );
    expect(racing.filter((r) => r.created)).toHaveLength(1);
    expect(new Set(racing.map((r) => r.grant.id)).size).toBe(1);
    expect(await creditBalance(db, customerId)).toBe(5_000);
  });

  it("refuses an unknown customer", async () => {
    await expect(grant("cust_nobody", 1_000)).rejects.toThrow(/no customer/);
  });
});

describe("expiry and voids", () => {
  it("expires what is left of a grant past its expiry once, leaving consumed amounts alone", async () => {
    const customerId = await newCustomer();
    const { grant: expiring } = await grant(customerId, 3_000, { expiresAt: inDays(1) });
    await grant(customerId, 1_000);
    await consume(customerId, "req_before_expiry", 2_000);
    const later = inDays(2);

    const first = await expireCredits(db, later);
    expect(first.expiredMicros).toBeGreaterThanOrEqual(1_000);
    expect(await db("credit_entries").where({ grant_id: expiring.id, kind: "expiry" })).toEqual([
      expect.objectContaining({ amount_micros: -1_000 }),
    ]);
    await Promise.all([expireCredits(db, later), expireCredits(db, later)]);
    expect(await db("credit_entries").where({ grant_id: expiring.id, kind: "expiry" })).toHaveLength(1);
    expect(
      await db("credit_entries").where({ request_id: "req_before_expiry" }).sum("amount_micros as s"),
    ).toEqual([{ s: "-2000" }]);
    expect(await ledgerSum(customerId)).toBe(1_000);
    expect(await creditBalance(db, customerId)).toBe(1_000);
  });

  it("voids what is left of a grant once; the ledger refuses updates and deletes", async () => {
    const customerId = await newCustomer();
    const { grant: voided } = await grant(customerId, 2_500);
    await consume(customerId, "req_before_void", 500);
    expect(await voidGrant(db, voided.id)).toMatchObject({ voidedMicros: 2_000 });
    expect(await voidGrant(db, voided.id)).toMatchObject({ voidedMicros: 0 });
    expect(await creditBalance(db, customerId)).toBe(0);
    await expect(db("credit_entries").where({ customer_id: customerId }).del()).rejects.toThrow(
      /append-only/,
    );
    await expect(
      db("credit_entries").where({ customer_id: customerId }).update({ amount_micros: 1 }),
    ).rejects.toThrow(/append-only/);
  });
});

describe("migration 20261202002000_credit_ledger", () => {
  it("rolls back and applies again", async () => {
    const name = "20261202002000_credit_ledger";
    await db.migrate.down({ migrationSource, name });
    expect(await db.schema.hasTable("credit_entries")).toBe(false);
    await db.migrate.up({ migrationSource, name });
    const customerId = await newCustomer();
    await grant(customerId, 10);
    expect(await creditBalance(db, customerId)).toBe(10);
  });
});
