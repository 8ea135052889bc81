import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { useStack } from "./helpers/stack.js";
import { upsertPlan } from "../src/billing/pricing/plans.js";
import { recordUsage } from "../src/billing/ledger/ledger.js";
import { estimatePromptTokens } from "../src/llm/usage.js";

// A private Redis: this test flushes it.
const stack = useStack({ redis: "private" });
let admin: Redis;

const messages = [
  { role: "user" as const, content: "count one two three four five six seven eight nine ten" },
];
const perRequest = (await estimatePromptTokens({ messages })) + 5;
const LIMIT = 10 * perRequest;

beforeAll(async () => {
  admin = new Redis(stack.redisServer.url);
  await upsertPlan(stack.db, {
    id: "capped",
    name: "Capped",
    kind: "usage",
    overagePer1kMicros: 2_000,
    hardLimitTokens: LIMIT,
  });
});
afterAll(() => {
  admin?.disconnect();
});

const chat = (key: string) => stack.chat(key, { model: "gpt-4o-mini", messages, max_tokens: 5 });

describe("when Redis loses the quota counter mid-period", () => {
  it("rebuilds it from the Postgres ledger and still refuses past the hard limit", async () => {
    const { customerId, key } = await stack.customer({ planId: "capped" });
    expect((await chat(key)).status).toBe(200);
    // Usage the counter never saw (written straight to the ledger) leaves room for one request.
    await recordUsage(stack.db, {
      requestId: "chat_outside_the_counter",
      customerId,
      model: "gpt-4o-mini",
      promptTokens: LIMIT - 2 * perRequest,
      cachedTokens: 0,
      cacheWriteTokens: 0,
      completionTokens: 0,
      reasoningTokens: 0,
      billableTokens: LIMIT - 2 * perRequest,
      providerCostMicros: 0,
      priceMicros: 0,
      source: "provider",
      planId: "capped",
      pricing: { includedTokens: 0, overagePer1kMicros: 0 },
    });
    // The Redis counter still says one request was used, so it would let eight more through.
    expect((await chat(key)).status).toBe(200);

    await admin.flushall();
    // Rebuilt from Postgres: the limit is now full.
    expect((await chat(key)).status).toBe(402);
    const rows = await stack
      .db("usage_events")
      .where({ customer_id: customerId })
      .sum({ t: "billable_tokens" });
    expect(Number(rows[0]!.t)).toBe(LIMIT);
  });

  it("lets a customer with room continue after the flush", async () => {
    const { key } = await stack.customer({ planId: "capped" });
    expect((await chat(key)).status).toBe(200);
    await admin.flushall();
    const statuses = await Promise.all(Array.from({ length: 12 }, () => chat(key).then((r) => r.status)));
    expect(statuses.filter((s) => s === 200)).toHaveLength(9);
    expect(statuses.filter((s) => s === 402)).toHaveLength(3);
  });
});
