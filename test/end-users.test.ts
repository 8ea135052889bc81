import { describe, expect, it } from "vitest";
import { ADMIN_TOKEN, useStack, waitFor } from "./helpers/stack.js";
import { runCliJson } from "./helpers/cli.js";
import { upsertPlan } from "../src/billing/pricing/plans.js";
import { recordUsage } from "../src/billing/ledger/ledger.js";
import { estimatePromptTokens } from "../src/llm/usage.js";

const stack = useStack({ emulator: { latencyMs: 50 } });

const messages = [
  { role: "user" as const, content: "count one two three four five six seven eight nine ten" },
];
const MAX_TOKENS = 5;
const prompt = await estimatePromptTokens({ messages });
// What the API reserves for one such request; the emulator answers with exactly max_tokens.
const perRequest = prompt + MAX_TOKENS;
const RATE_PER_1K = 2_000; // 2 micro-dollars a token

/** A customer on a plan without a hard limit: only end-user limits hold its end users back. */
async function customer() {
  const id = `endusers_${Math.random().toString(36).slice(2, 8)}`;
  await upsertPlan(stack.db, { id, name: "End users", kind: "usage", overagePer1kMicros: RATE_PER_1K });
  return { ...(await stack.customer({ planId: id })), planId: id };
}

/** A chat from `key`, for the end user in `user` (body) and/or `header` (X-End-User). */
const chat = (key: string, who: { user?: string; header?: string } = {}, url = stack.url) =>
  stack.chat(
    key,
    {
      model: "gpt-4o-mini",
      messages,
      max_tokens: MAX_TOKENS,
      ...(who.user === undefined ? {} : { user: who.user }),
    },
    { url, headers: who.header === undefined ? {} : { "x-end-user": who.header } },
  );

const admin = (method: string, path: string, body?: unknown) =>
  fetch(`${stack.url}/admin${path}`, {
    method,
    headers: { authorization: `Bearer ${ADMIN_TOKEN}`, "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });

async function setLimit(customerId: string, body: Record<string, unknown>) {
  const res = await admin("PUT", `/customers/${customerId}/end-user-limits`, body);
  expect(res.status).toBe(200);
  return res.json() as Promise<Record<string, unknown>>;
}

const billed = async (customerId: string, endUser: string) => {
  const [row] = await stack
    .db("usage_events")
    .where({ customer_id: customerId, end_user: endUser })
    .sum({ t: "billable_tokens" });
  return Number(row?.t ?? 0);
};

/** One group of GET /v1/usage?group_by, and a page of them (or the 400's error). */
type Group = {
  end_user?: string | null;
  model?: string;
  day?: string;
  requests: number;
  billable_tokens: number;
  charge_micros: number;
};
type GroupPage = {
  data: Group[];
  has_more: boolean;
  next_starting_after: string | null;
  error?: { type: string; param: string | null };
};

const usage = async (key: string, query: string) => {
  const res = await fetch(`${stack.url}/v1/usage?${query}`, { headers: { authorization: `Bearer ${key}` } });
  return { status: res.status, body: (await res.json()) as GroupPage };
};

describe("an end user's limit", () => {
  it("holds for 50 concurrent requests from one end user across two web processes while the customer's other end users are served", async () => {
    const second = await stack.startWeb();
    try {
      const { customerId, key } = await customer();
      await setLimit(customerId, { limit_tokens: 10 * perRequest });
      const alice = Array.from({ length: 50 }, (_, i) =>
        chat(key, { user: "alice" }, i % 2 === 0 ? stack.url : second.url),
      );
      const others = Array.from({ length: 10 }, (_, i) =>
        chat(key, i % 2 === 0 ? { user: "bob" } : { header: "carol" }, i % 3 === 0 ? second.url : stack.url),
      );
      const [aliceAnswers, otherAnswers] = await Promise.all([Promise.all(alice), Promise.all(others)]);

      expect(otherAnswers.map((r) => r.status)).toEqual(Array(10).fill(200));
      const served = aliceAnswers.filter((r) => r.status === 200);
      const refused = aliceAnswers.filter((r) => r.status !== 200);
      // The emulator answers exactly the reserved tokens: ten requests fill the limit, no more.
      expect(served).toHaveLength(10);
      for (const r of refused) {
        expect(r.status).toBe(402);
        expect(r.body.error).toMatchObject({ type: "insufficient_quota", code: "end_user_limit_exceeded" });
      }
      expect(refused[0]!.body.error!.message).toMatch(/End user 'alice' has 0 of its \d+-token limit left/);
      expect(await billed(customerId, "alice")).toBe(10 * perRequest);
      expect(await billed(customerId, "bob")).toBe(5 * perRequest);
      expect(await billed(customerId, "carol")).toBe(5 * perRequest);

      // Alice stays refused; requests for no end user, and other end users, go on.
      expect((await chat(key, { user: "alice" })).status).toBe(402);
      expect((await chat(key)).status).toBe(200);
      expect((await chat(key, { header: "dave" })).status).toBe(200);
    } finally {
      await second.close();
    }
  });

  it("cuts the completion of the request that reaches the limit at what is left, then refuses", async () => {
    const { customerId, key } = await customer();
    // An override for erin; the default does not apply to her.
    await setLimit(customerId, { limit_tokens: 1000 });
    await setLimit(customerId, { end_user: "erin", limit_tokens: perRequest + prompt + 2 });
    expect((await chat(key, { user: "erin" })).status).toBe(200);
    const cut = await chat(key, { user: "erin" });
    expect(cut.status).toBe(200);
    expect(cut.body.usage?.completion_tokens).toBe(2);
    expect(cut.body.choices?.[0]?.finish_reason).toBe("length");
    const refused = await chat(key, { user: "erin" });
    expect(refused.status).toBe(402);
    expect(refused.body.error?.message).toMatch(/End user 'erin' has 0 of its \d+-token limit/);
    expect(await billed(customerId, "erin")).toBe(perRequest + prompt + 2);
  });

  it("limits spend at the plan's rate, and gives a failed request's reservation back", async () => {
    const { customerId, key } = await customer();
    // Two requests' worth at 2 micro-dollars a token.
    await setLimit(customerId, { end_user: "frank", limit_micros: (2 * perRequest * RATE_PER_1K) / 1000 });
    stack.emulator.injectFault({ kind: "status", status: 400, times: 1, message: "bad request" });
    expect((await chat(key, { user: "frank" })).status).toBe(400);
    expect((await chat(key, { user: "frank" })).status).toBe(200);
    expect((await chat(key, { user: "frank" })).status).toBe(200);
    const refused = await chat(key, { user: "frank" });
    expect(refused.status).toBe(402);
    expect(refused.body.error?.code).toBe("end_user_limit_exceeded");
    expect(await billed(customerId, "frank")).toBe(2 * perRequest);
  });

  it("is rebuilt from the ledger when Redis lost the counter", async () => {
    const { customerId, key, planId } = await customer();
    await setLimit(customerId, { end_user: "gina", limit_tokens: 3 * perRequest });
    expect((await chat(key, { user: "gina" })).status).toBe(200);
    // Usage the counter never saw, written straight to the ledger: room is left for one request.
    await recordUsage(stack.db, {
      requestId: `chat_outside_${customerId}`,
      customerId,
      model: "gpt-4o-mini",
      promptTokens: perRequest,
      cachedTokens: 0,
      cacheWriteTokens: 0,
      completionTokens: 0,
      reasoningTokens: 0,
      billableTokens: perRequest,
      providerCostMicros: 0,
      priceMicros: 0,
      source: "provider",
      planId,
      pricing: { includedTokens: 0, overagePer1kMicros: 0 },
      endUser: "gina",
    });
    // Only this customer's end-user counters go: Redis is shared with other tests.
    const counters = await stack.web.redis.keys(`{${stack.config.queuePrefix}-quota-${customerId}}:eu:*`);
    expect(counters).toHaveLength(1);
    await stack.web.redis.del(...counters);

    expect((await chat(key, { user: "gina" })).status).toBe(200);
    expect((await chat(key, { user: "gina" })).status).toBe(402);
    expect(await billed(customerId, "gina")).toBe(3 * perRequest);
  });

  it("is set, listed and removed through the admin API and the CLI", { timeout: 180_000 }, async () => {
    const { customerId } = await customer();
    const set = await setLimit(customerId, { limit_tokens: 100, limit_micros: 500 });
    expect(set).toMatchObject({
      object: "end_user_limit",
      end_user: null,
      limit_tokens: 100,
      limit_micros: 500,
    });
    const cli = (await runCliJson(
      stack.config,
      "end-users:limit",
      "--customer",
      customerId,
      "--end-user",
      "hal",
      "--spend-micros",
      "700",
    )) as Record<string, unknown>;
    expect(cli).toMatchObject({ endUser: "hal", limitTokens: null, limitMicros: 700 });
    const listed = (await (await admin("GET", `/customers/${customerId}/end-user-limits`)).json()) as {
      data: Array<Record<string, unknown>>;
    };
    expect(listed.data.map((l) => [l.end_user, l.limit_tokens, l.limit_micros])).toEqual([
      [null, 100, 500],
      ["hal", null, 700],
    ]);

    const bad = await admin("PUT", `/customers/${customerId}/end-user-limits`, { end_user: "hal" });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: { message: string } }).error.message).toMatch(/limit_tokens/);
    expect((await admin("PUT", "/customers/nobody/end-user-limits", { limit_tokens: 1 })).status).toBe(404);

    expect((await admin("DELETE", `/customers/${customerId}/end-user-limits?end_user=hal`)).status).toBe(200);
    expect((await admin("DELETE", `/customers/${customerId}/end-user-limits?end_user=hal`)).status).toBe(404);
    expect((await admin("DELETE", `/customers/${customerId}/end-user-limits`)).status).toBe(200);
    const empty = (await (await admin("GET", `/customers/${customerId}/end-user-limits`)).json()) as {
      data: unknown[];
    };
    expect(empty.data).toEqual([]);
  });
});

describe("the end user on each usage row", () => {
  it("is the one of that request only: two end users alternating on one key", async () => {
    const { key } = await customer();
    const sent: Array<string | null> = ["ann", "ben", "ann", "ben", null, "ann", "ben"];
    const ids: string[] = [];
    for (const who of sent) {
      const res = await chat(key, who === null ? {} : who === "ann" ? { user: who } : { header: who });
      expect(res.status).toBe(200);
      ids.push(res.requestId!);
    }
    const rows: Array<{ request_id: string; end_user: string | null }> = await stack
      .db("usage_events")
      .whereIn("request_id", ids)
      .select("request_id", "end_user");
    const byId = new Map(rows.map((r) => [r.request_id, r.end_user]));
    expect(ids.map((id) => byId.get(id))).toEqual(sent);
  });

  it("comes from `user` or X-End-User; both given and different is a 400", async () => {
    const { key } = await customer();
    const mismatch = await chat(key, { user: "ann", header: "ben" });
    expect(mismatch.status).toBe(400);
    expect(mismatch.body.error).toMatchObject({ code: "end_user_mismatch", param: "user" });
    const same = await chat(key, { user: "ann", header: "ann" });
    expect(same.status).toBe(200);
    const tooLong = await chat(key, { header: "x".repeat(513) });
    expect(tooLong.status).toBe(400);
    const [row] = await stack.db("usage_events").where({ request_id: same.requestId }).select("end_user");
    expect(row.end_user).toBe("ann");
  });
});

describe("GET /v1/usage?group_by", () => {
  it("answers who used what by end user, model and day, a page at a time", async () => {
    const { customerId, key } = await customer();
    for (const user of ["zed", "amy", "kim"]) expect((await chat(key, { user })).status).toBe(200);
    expect((await chat(key)).status).toBe(200);
    // Ingested usage names its end user too.
    const ingest = await fetch(`${stack.url}/v1/usage`, {
      method: "POST",
      headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
      body: JSON.stringify({
        events: [
          { id: "e1", model: "gpt-4o", prompt_tokens: 100, completion_tokens: 10, user: "amy" },
          { id: "e2", model: "gpt-4o", prompt_tokens: 7, completion_tokens: 3 },
        ],
      }),
    });
    expect(ingest.status).toBe(202);
    await waitFor(
      async () =>
        (await stack.db("usage_events").where({ customer_id: customerId }).count({ n: "*" }))[0]!.n == 6,
      { what: "the ingested rows" },
    );

    const pages: GroupPage[] = [];
    let cursor: string | undefined;
    for (;;) {
      const after = cursor === undefined ? "" : `&starting_after=${encodeURIComponent(cursor)}`;
      const page = await usage(key, `group_by=end_user&limit=1${after}`);
      expect(page.status).toBe(200);
      pages.push(page.body);
      if (!page.body.has_more) break;
      cursor = page.body.next_starting_after!;
    }
    // One group a page; the first (no end user) pages on with an empty cursor.
    expect(pages).toHaveLength(4);
    expect(pages[0]!.next_starting_after).toBe("");
    const rows = pages.flatMap((p) => p.data);
    expect(rows.map((r) => [r.end_user, r.requests])).toEqual([
      [null, 2],
      ["amy", 2],
      ["kim", 1],
      ["zed", 1],
    ]);
    expect(rows[1]!.billable_tokens).toBe(perRequest + 110);
    expect(rows[1]!.charge_micros).toBeGreaterThan(0);

    const models = await usage(key, "group_by=model");
    expect(models.body.data.map((r) => [r.model, r.requests])).toEqual([
      ["gpt-4o", 2],
      ["gpt-4o-mini", 4],
    ]);
    const days = await usage(key, "group_by=day");
    const total = days.body.data.reduce((sum, r) => sum + r.billable_tokens, 0);
    expect(total).toBe(4 * perRequest + 120);
    expect(days.body.data[0]!.day).toMatch(/^\d{4}-\d{2}-\d{2}$/);

    const past = await usage(key, "group_by=end_user&period=2020-01");
    expect(past.body).toMatchObject({
      data: [],
      has_more: false,
      period: { start: "2020-01-01T00:00:00.000Z" },
    });

    const bad = await usage(key, "group_by=customer");
    expect(bad.status).toBe(400);
    expect(bad.body.error).toMatchObject({ type: "invalid_request_error", param: "group_by" });
    expect((await usage(key, "group_by=day&period=2020-13")).status).toBe(400);
    expect((await usage(key, "group_by=day&limit=0")).status).toBe(400);
  });
});
