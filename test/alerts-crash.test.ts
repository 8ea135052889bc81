import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { upsertPlan } from "../src/billing/pricing/plans.js";
import { recordedTokens } from "../src/billing/ledger/quota.js";
import { billingPeriod } from "../src/billing/ledger/periods.js";
import { ADMIN_TOKEN, useStack, waitFor } from "./helpers/stack.js";
import { startReceiver } from "./helpers/webhook-receiver.js";

// No in-process worker: two worker processes share the queues, and one is killed with SIGKILL.
const stack = useStack({
  worker: false,
  env: {
    ALERT_RULES_CACHE_MS: "0",
    WORKER_LOCK_MS: "1500",
    WORKER_STALLED_INTERVAL_MS: "1000",
    WEBHOOK_ATTEMPTS: "500",
    WEBHOOK_BACKOFF_MS: "50",
    WEBHOOK_MAX_BACKOFF_MS: "250",
    WEBHOOK_SWEEP_INTERVAL_MS: "1000",
  },
});
let receiver: Awaited<ReturnType<typeof startReceiver>>;
beforeAll(async () => {
  receiver = await startReceiver();
});
afterAll(async () => {
  await receiver.close();
});

const ROWS = 1_000;
const PER_BATCH = 10;
const TOKENS_PER_ROW = 100;

/** Posts batches `from`..`to` (exclusive) of ten 100-token events, ten requests at a time. */
async function ingest(key: string, from: number, to: number): Promise<void> {
  for (let first = from; first < to; first += 10) {
    const batches = Array.from({ length: Math.min(10, to - first) }, (_, i) => first + i);
    const statuses = await Promise.all(
      batches.map(async (b) => {
        const events = Array.from({ length: PER_BATCH }, (_, i) => ({
          id: `crash-${b}-${i}`,
          model: "gpt-4o-mini",
          prompt_tokens: TOKENS_PER_ROW - 10,
          completion_tokens: 10,
        }));
        const res = await fetch(`${stack.url}/v1/usage`, {
          method: "POST",
          headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
          body: JSON.stringify({ events }),
        });
        return res.status;
      }),
    );
    expect(statuses.every((s) => s === 202)).toBe(true);
  }
}

describe("an allowance alert across two worker processes, one killed mid-way", () => {
  it(
    "1,000 usage rows crossing 80 % → exactly one usage.threshold_reached event, delivered once the receiver is back",
    { timeout: 240_000 },
    async () => {
      await upsertPlan(stack.db, {
        id: "crash-allowance",
        name: "Crash",
        kind: "usage",
        includedTokens: ROWS * TOKENS_PER_ROW,
        overagePer1kMicros: 1_000,
      });
      const { customerId, key } = await stack.customer({ planId: "crash-allowance" });
      const ruleRes = await fetch(`${stack.url}/admin/alert-rules`, {
        method: "POST",
        headers: { authorization: `Bearer ${ADMIN_TOKEN}`, "content-type": "application/json" },
        body: JSON.stringify({ plan_id: "crash-allowance", kind: "allowance_share", threshold: 80 }),
      });
      expect(ruleRes.status).toBe(201);
      const endpointRes = await fetch(`${stack.url}/admin/webhook-endpoints`, {
        method: "POST",
        headers: { authorization: `Bearer ${ADMIN_TOKEN}`, "content-type": "application/json" },
        body: JSON.stringify({ url: receiver.url("/crash"), events: ["usage.threshold_reached"] }),
      });
      expect(endpointRes.status).toBe(201);
      // The receiver is down (connection refused) for the first part of the run.
      await receiver.down();

      const doomed = stack.spawnWorkerProcess();
      const survivor = stack.spawnWorkerProcess();
      const rows = async () =>
        Number((await stack.db("usage_events").where({ customer_id: customerId }).count({ n: "*" }))[0]!.n);

      // 850 rows posted; the first worker dies as the ledger nears the 80 % mark (800 rows).
      await ingest(key, 0, 85);
      await waitFor(async () => (await rows()) >= 760, { timeoutMs: 60_000, what: "760 rows" });
      const rowsAtKill = await rows();
      doomed.child.kill("SIGKILL");
      expect(await doomed.exited).toBeNull();
      await ingest(key, 85, ROWS / PER_BATCH);

      await waitFor(async () => (await rows()) === ROWS, { timeoutMs: 60_000, what: "1,000 rows" });
      const firing = await waitFor(
        () => stack.db("alert_firings").where({ customer_id: customerId }).first(),
        {
          timeoutMs: 30_000,
          what: "the firing",
        },
      );
      const eventId = `evt_alert_${firing.id}`;
      // Its delivery was tried and refused while the receiver was down.
      await waitFor(
        async () =>
          (await stack.db("webhook_deliveries").where({ event_id: eventId }).first())?.attempts >= 2,
        { timeoutMs: 90_000, what: "failed delivery attempts" },
      );
      const failedAttempts = (await stack.db("webhook_deliveries").where({ event_id: eventId }).first())
        .attempts;
      await receiver.up();

      const delivered = await waitFor(
        () => stack.db("webhook_deliveries").where({ event_id: eventId, status: "delivered" }).first(),
        { timeoutMs: 60_000, what: "the delivery" },
      );
      await waitFor(
        async () => {
          const c = await stack.web.queues.usage.getJobCounts("waiting", "active", "delayed", "prioritized");
          return Object.values(c).every((n) => n === 0);
        },
        { timeoutMs: 30_000, what: "every usage job to finish" },
      );

      const received = receiver.received.filter((r) => r.path === "/crash").map((r) => r.event);
      const reachedIds = new Set(
        received.filter((e) => e.type === "usage.threshold_reached").map((e) => e.id),
      );
      expect([...reachedIds]).toEqual([eventId]);
      expect(received[0]).toMatchObject({
        data: { customer_id: customerId, kind: "allowance_share", threshold: 80, limit_tokens: 100_000 },
      });
      expect((received[0]!.data as { value: number }).value).toBeGreaterThanOrEqual(80);
      expect(await stack.db("alert_firings").where({ customer_id: customerId })).toHaveLength(1);
      const events = await stack.db("webhook_events").whereRaw("data->>'customer_id' = ?", [customerId]);
      expect(events.map((e) => e.id)).toEqual([eventId]);
      const period = await billingPeriod(stack.db, customerId);
      expect(await recordedTokens(stack.db, customerId, period)).toBe(ROWS * TOKENS_PER_ROW);
      const usageJobs = await stack.web.queues.usage.getJobs(["completed", "failed"], 0, -1);
      const retried = usageJobs.filter((j) => j.attemptsMade > 1 || (j.stalledCounter ?? 0) > 0).length;
      // The kill landed mid-job: the jobs it held were taken over by the survivor after their stall.
      expect(retried).toBeGreaterThanOrEqual(1);
      expect(usageJobs.filter((j) => j.failedReason)).toEqual([]);
      console.log(
        JSON.stringify({
          rowsAtKill,
          usageJobs: usageJobs.length,
          failedUsageJobs: usageJobs.filter((j) => j.failedReason).length,
          retriedOrStalledJobs: retried,
          failedAttemptsWhileDown: failedAttempts,
          deliveryAttempts: delivered.attempts,
          postsReceived: received.length,
          firedAtPercent: (received[0]!.data as { value: number }).value,
        }),
      );

      survivor.child.kill("SIGTERM");
      await survivor.exited;
    },
  );
});
