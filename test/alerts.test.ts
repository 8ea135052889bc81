import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { upsertPlan } from "../src/billing/pricing/plans.js";
import { updateCustomer } from "../src/billing/customers/customers.js";
import { grantCredits } from "../src/billing/credits/grants.js";
import { evaluateAlerts, valueOf } from "../src/billing/alerts/evaluate.js";
import { listFiredAlerts } from "../src/billing/alerts/fired.js";
import { billingPeriod } from "../src/billing/ledger/periods.js";
import { recordUsageRows } from "../src/billing/ledger/ledger.js";
import { runCli, runCliJson } from "./helpers/cli.js";
import { ADMIN_TOKEN, useStack, waitFor } from "./helpers/stack.js";
import { startReceiver } from "./helpers/webhook-receiver.js";

const stack = useStack({
  env: {
    ALERT_RULES_CACHE_MS: "0",
    WEBHOOK_ATTEMPTS: "200",
    WEBHOOK_BACKOFF_MS: "20",
    WEBHOOK_MAX_BACKOFF_MS: "150",
  },
});
let receiver: Awaited<ReturnType<typeof startReceiver>>;
beforeAll(async () => {
  receiver = await startReceiver();
});
afterAll(async () => {
  await receiver.close();
});

const admin = (path: string, init: { method?: string; body?: unknown } = {}) =>
  fetch(`${stack.url}/admin${path}`, {
    method: init.method ?? "GET",
    headers: { authorization: `Bearer ${ADMIN_TOKEN}`, "content-type": "application/json" },
    body: init.body === undefined ? undefined : JSON.stringify(init.body),
  });

async function addRule(body: object): Promise<{ id: string }> {
  const res = await admin("/alert-rules", { method: "POST", body });
  expect(res.status).toBe(201);
  return (await res.json()) as { id: string };
}

let nextEvent = 0;
/** Ingests `tokens` billable tokens as one event through POST /v1/usage and waits for its batch. */
async function use(key: string, tokens: number): Promise<void> {
  const res = await fetch(`${stack.url}/v1/usage`, {
    method: "POST",
    headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
    body: JSON.stringify({
      events: [
        { id: `alert-evt-${nextEvent++}`, model: "gpt-4o-mini", prompt_tokens: tokens, completion_tokens: 0 },
      ],
    }),
  });
  expect(res.status).toBe(202);
  const { batch_id } = (await res.json()) as { batch_id: string };
  await waitFor(async () => (await stack.web.queues.usage.getJob(batch_id))?.finishedOn, {
    what: `usage batch ${batch_id}`,
  });
}

/** The events of the customer's alerts the receiver got, by path. */
const receivedAt = (path: string) => receiver.received.filter((r) => r.path === path).map((r) => r.event);

async function listen(path: string, events: string[]) {
  const res = await admin("/webhook-endpoints", {
    method: "POST",
    body: { url: receiver.url(path), events },
  });
  expect(res.status).toBe(201);
}

describe("alert rules (admin API)", () => {
  it("creates, lists and deletes rules; refuses bad input with a 400 naming the field", async () => {
    const { customerId } = await stack.customer();
    const rule = await addRule({ customer_id: customerId, kind: "spend_above", threshold: 5_000_000 });
    expect(rule).toMatchObject({ object: "alert_rule", customerId, planId: null, kind: "spend_above" });

    const bad: Array<[object, string | null, string]> = [
      [{ kind: "allowance_share", threshold: 80 }, "plan_id", "invalid_owner"],
      [
        { plan_id: "pro", customer_id: customerId, kind: "allowance_share", threshold: 80 },
        "plan_id",
        "invalid_owner",
      ],
      [{ plan_id: "pro", kind: "loud", threshold: 80 }, "kind", "invalid_value"],
      [{ plan_id: "pro", kind: "allowance_share", threshold: 0 }, "threshold", "invalid_threshold"],
      [{ plan_id: "pro", kind: "allowance_share", threshold: 80.5 }, "threshold", "invalid_value"],
      [{ plan_id: "pro", kind: "balance_below", threshold: -1 }, "threshold", "invalid_value"],
      [{ plan_id: "pro", kind: "balance_below" }, "threshold", "missing_required_parameter"],
      [{ plan_id: "nope", kind: "allowance_share", threshold: 80 }, "plan_id", "unknown_plan"],
      [
        { customer_id: "cus_nope", kind: "allowance_share", threshold: 80 },
        "customer_id",
        "unknown_customer",
      ],
    ];
    for (const [body, param, code] of bad) {
      const res = await admin("/alert-rules", { method: "POST", body });
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(((await res.json()) as { error: unknown }).error).toMatchObject({
        type: "invalid_request_error",
        param,
        code,
      });
    }
    const dup = await admin("/alert-rules", {
      method: "POST",
      body: { customer_id: customerId, kind: "spend_above", threshold: 5_000_000 },
    });
    expect(dup.status).toBe(409);

    const listed = (await (await admin(`/alert-rules?customer_id=${customerId}`)).json()) as {
      data: unknown[];
    };
    expect(listed.data).toEqual([expect.objectContaining({ id: rule.id, threshold: 5_000_000 })]);
    expect((await admin(`/alert-rules/${rule.id}`, { method: "DELETE" })).status).toBe(200);
    expect((await admin(`/alert-rules/${rule.id}`, { method: "DELETE" })).status).toBe(404);
    const after = (await (await admin(`/alert-rules?customer_id=${customerId}`)).json()) as {
      data: unknown[];
    };
    expect(after.data).toEqual([]);
  });

  it(
    "has CLI commands: alerts:add validates like the API, alerts:list and alerts:fired",
    { timeout: 90_000 },
    async () => {
      const { customerId } = await stack.customer();
      const created = (await runCliJson(
        stack.config,
        "alerts:add",
        "--customer",
        customerId,
        "--kind",
        "balance_below",
        "--threshold",
        "2000000",
      )) as { id: string; kind: string };
      expect(created.kind).toBe("balance_below");
      const both = await runCli(
        stack.config,
        "alerts:add",
        "--customer",
        customerId,
        "--plan",
        "pro",
        "--kind",
        "balance_below",
        "--threshold",
        "1",
      );
      expect(both.code).toBe(2);
      expect(both.stderr).toContain("exactly one of --plan and --customer");
      const share = await runCli(
        stack.config,
        "alerts:add",
        "--plan",
        "pro",
        "--kind",
        "allowance_share",
        "--threshold",
        "0",
      );
      expect(share.code).toBe(2);
      expect(share.stderr).toContain("percent from 1 to 10000");
      const listed = (await runCliJson(stack.config, "alerts:list", "--customer", customerId)) as Array<{
        id: string;
      }>;
      expect(listed.map((r) => r.id)).toEqual([created.id]);
      expect(await runCliJson(stack.config, "alerts:fired", "--customer", customerId)).toEqual([]);
    },
  );
});

describe("alert evaluation", () => {
  it("measures shares exactly, and never meets a share of a limit the plan does not have", () => {
    const plan = {
      id: "p",
      name: "p",
      kind: "usage" as const,
      baseFeeMicros: 0,
      includedTokens: 1_000,
      overagePer1kMicros: 2_000,
      hardLimitTokens: null,
    };
    const m = (tokens: number) => ({ plan, tokens, balanceMicros: 0 });
    expect(valueOf({ kind: "allowance_share", threshold: 80 }, m(799))).toMatchObject({
      met: false,
      value: 79,
    });
    expect(valueOf({ kind: "allowance_share", threshold: 80 }, m(800))).toMatchObject({
      met: true,
      value: 80,
    });
    expect(valueOf({ kind: "hard_limit_share", threshold: 1 }, m(10_000)).met).toBe(false);
    // 1,500 tokens past 1,000 included at $0.002 per 1K: 1,000 µ$ of overage.
    expect(valueOf({ kind: "spend_above", threshold: 999 }, m(1_500))).toMatchObject({
      met: true,
      value: 1_000,
    });
    expect(valueOf({ kind: "spend_above", threshold: 1_000 }, m(1_500)).met).toBe(false);
  });

  it("fires usage.threshold_reached once per period, and recovered once when a bigger plan clears it", async () => {
    await upsertPlan(stack.db, {
      id: "alerts-small",
      name: "Small",
      kind: "usage",
      includedTokens: 1_000,
      overagePer1kMicros: 1_000,
    });
    await upsertPlan(stack.db, {
      id: "alerts-big",
      name: "Big",
      kind: "usage",
      includedTokens: 10_000,
      overagePer1kMicros: 1_000,
    });
    const { customerId, key } = await stack.customer({ planId: "alerts-small" });
    await listen("/share", ["usage.threshold_reached", "usage.threshold_recovered"]);
    const rule = await addRule({ customer_id: customerId, kind: "allowance_share", threshold: 80 });
    const mine = () =>
      receivedAt("/share").filter((e) => (e.data as { customer_id: string }).customer_id === customerId);

    await use(key, 700);
    expect(await stack.db("alert_firings").where({ customer_id: customerId })).toHaveLength(0);
    await use(key, 150); // 850 of 1,000: 85 %
    await use(key, 100);
    await waitFor(() => mine().length >= 1, { what: "the threshold_reached event" });
    const [reached] = mine();
    const period = await billingPeriod(stack.db, customerId);
    expect(reached).toMatchObject({
      type: "usage.threshold_reached",
      data: {
        customer_id: customerId,
        rule: { id: rule.id },
        kind: "allowance_share",
        unit: "percent",
        threshold: 80,
        value: 85,
        used_tokens: 850,
        limit_tokens: 1_000,
        period: { start: period.start.toISOString(), end: period.end.toISOString() },
      },
    });
    // The customer sees it in GET /v1/usage with this period's usage.
    const usage = (await (
      await fetch(`${stack.url}/v1/usage`, { headers: { authorization: `Bearer ${key}` } })
    ).json()) as { alerts: Array<{ kind: string; threshold: number; value: number; recovered_at: null }> };
    expect(usage.alerts).toMatchObject([
      { kind: "allowance_share", threshold: 80, value: 85, recovered_at: null },
    ]);
    expect(reached!.id).toMatch(/^evt_alert_alf_/);

    await updateCustomer(stack.db, customerId, { planId: "alerts-big" });
    await use(key, 10);
    await use(key, 10);
    await waitFor(() => mine().length >= 2, { what: "the threshold_recovered event" });
    // Back under: the same period does not fire again.
    await updateCustomer(stack.db, customerId, { planId: "alerts-small" });
    await use(key, 10);
    const events = await stack
      .db("webhook_events")
      .where("id", "like", "evt_alert_%")
      .whereRaw("data->>'customer_id' = ?", [customerId]);
    expect(events.map((e) => e.type).sort()).toEqual([
      "usage.threshold_reached",
      "usage.threshold_recovered",
    ]);
    expect(mine().map((e) => e.type)).toEqual(["usage.threshold_reached", "usage.threshold_recovered"]);
    expect(mine()[1]).toMatchObject({ data: { value: 9, limit_tokens: 10_000 } });

    const fired = await listFiredAlerts(stack.db, customerId, period);
    expect(fired).toEqual([
      expect.objectContaining({
        ruleId: rule.id,
        kind: "allowance_share",
        value: 85,
        recoveredValue: 9,
        recoveredAt: expect.any(Date),
      }),
    ]);
    const shown = (await (await admin(`/customers/${customerId}/alerts`)).json()) as { data: unknown[] };
    expect(shown.data).toHaveLength(1);
  });

  it("fires credits.balance_low for a plan's rule, and credits.balance_recovered as soon as a top-up is granted", async () => {
    await upsertPlan(stack.db, {
      id: "alerts-credits",
      name: "Credits",
      kind: "usage",
      overagePer1kMicros: 1_000,
    });
    const { customerId, key } = await stack.customer({ planId: "alerts-credits" });
    await listen("/balance", ["credits.balance_low", "credits.balance_recovered"]);
    await addRule({ plan_id: "alerts-credits", kind: "balance_below", threshold: 5_000_000 });
    const mine = () =>
      receivedAt("/balance").filter((e) => (e.data as { customer_id: string }).customer_id === customerId);

    await grantCredits(stack.db, { customerId, amountMicros: 1_000_000, source: "manual" });
    await use(key, 10);
    await use(key, 10);
    await waitFor(() => mine().length >= 1, { what: "the balance_low event" });
    expect(mine()[0]).toMatchObject({
      type: "credits.balance_low",
      // Credits pay each 10-token use (10 micros at 1,000 per 1K) as it is written.
      data: { unit: "micros", threshold: 5_000_000, value: 1_000_000 - 10 },
    });

    // A top-up through the admin API recovers it at once, not at the customer's next request.
    const granted = await admin(`/customers/${customerId}/credits`, {
      method: "POST",
      body: { amount_micros: 9_000_000 },
    });
    expect(granted.status).toBe(201);
    await waitFor(() => mine().length >= 2, { what: "the balance_recovered event" });
    expect(mine().map((e) => [e.type, (e.data as { value: number }).value])).toEqual([
      ["credits.balance_low", 1_000_000 - 10],
      ["credits.balance_recovered", 10_000_000 - 20],
    ]);
    expect(await stack.db("alert_firings").where({ customer_id: customerId })).toHaveLength(1);
  });

  it("enqueues the deliveries of a firing whose enqueue was lost (a crash after the commit) on the next evaluation", async () => {
    await upsertPlan(stack.db, { id: "alerts-lost", name: "Lost", kind: "usage", includedTokens: 100 });
    const { customerId, key } = await stack.customer({ planId: "alerts-lost" });
    await listen("/lost", ["usage.threshold_reached"]);
    await addRule({ customer_id: customerId, kind: "allowance_share", threshold: 50 });
    await recordUsageRows(stack.db, [
      {
        requestId: `lost-${customerId}`,
        customerId,
        model: "gpt-4o-mini",
        promptTokens: 60,
        cachedTokens: 0,
        cacheWriteTokens: 0,
        completionTokens: 0,
        reasoningTokens: 0,
        billableTokens: 60,
        providerCostMicros: 0,
        priceMicros: 0,
        source: "ingested",
        planId: "alerts-lost",
        pricing: { includedTokens: 100, overagePer1kMicros: 2_000 },
      },
    ]);
    // An evaluation whose enqueue fails after the firing and its event were committed.
    const down = { addBulk: () => Promise.reject(new Error("Redis is down")) };
    await evaluateAlerts({ ...stack.web, queues: { webhookDelivery: down as never } }, customerId);
    const firing = await stack.db("alert_firings").where({ customer_id: customerId }).first();
    expect(firing.unsent_event_id).toBe(`evt_alert_${firing.id}`);
    expect(await stack.web.queues.webhookDelivery.getJobCountByTypes("waiting", "delayed", "active")).toBe(0);

    await use(key, 1);
    await waitFor(() => receivedAt("/lost").length === 1, { what: "the lost event's delivery" });
    expect(receivedAt("/lost")[0]!.id).toBe(firing.unsent_event_id);
    expect((await stack.db("alert_firings").where({ id: firing.id }).first()).unsent_event_id).toBeNull();
  });
});
