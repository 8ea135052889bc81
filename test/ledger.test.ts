import { beforeAll, describe, expect, it } from "vitest";
import { useStack } from "./helpers/stack.js";
import { recordUsage, type UsageRow } from "../src/billing/ledger/ledger.js";
import { usageRow } from "./helpers/usage-row.js";

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
