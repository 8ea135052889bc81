import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createMaintenanceProcessor } from "../jobs/maintenance.js";
import { createEndpoint } from "../src/notifications/endpoints.js";
import { sweepPendingDeliveries } from "../src/notifications/delivery-sweeper.js";
import { publishEvent } from "../src/notifications/publish.js";
import { ADMIN_TOKEN, useStack, waitFor } from "./helpers/stack.js";
import { startReceiver } from "./helpers/webhook-receiver.js";

// No worker until a test starts one: jobs wait in Redis, where a test can lose them.
const stack = useStack({
  worker: false,
  env: { WEBHOOK_ATTEMPTS: "3", WEBHOOK_BACKOFF_MS: "20", WEBHOOK_MAX_BACKOFF_MS: "50" },
});
let receiver: Awaited<ReturnType<typeof startReceiver>>;
beforeAll(async () => {
  receiver = await startReceiver();
});
afterAll(async () => {
  await receiver.close();
});

let worker: Promise<unknown> | undefined;
const startWorker = () => (worker ??= stack.startWorker());
const delivery = (eventId: string) => stack.db("webhook_deliveries").where({ event_id: eventId }).first();
const admin = (path: string, method = "GET") =>
  fetch(`${stack.url}/admin${path}`, { method, headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });

describe("outgoing webhooks that fail", () => {
  it("a delivery whose job Redis lost is enqueued again by the sweeper and delivered", async () => {
    await createEndpoint(stack.db, { url: receiver.url("/lost"), events: ["test.lost"] });
    const event = await publishEvent(stack.web, { type: "test.lost", data: {} });
    const [id] = event.deliveryIds;
    const queue = stack.web.queues.webhookDelivery;
    expect(await queue.getJobState(id!)).toBe("waiting");
    await queue.remove(id!);
    expect(await queue.getJobState(id!)).toBe("unknown");

    const swept = await sweepPendingDeliveries(stack.web, { graceMs: 0 });
    expect(swept.requeued).toEqual([id]);
    expect(await queue.getJobState(id!)).toBe("waiting");
    // A second sweep finds the job there: nothing is added twice.
    expect((await sweepPendingDeliveries(stack.web, { graceMs: 0 })).requeued).toEqual([]);

    await startWorker();
    await waitFor(async () => (await delivery(event.id))?.status === "delivered", { what: "delivered" });
    expect(receiver.received.filter((r) => r.event.id === event.id)).toHaveLength(1);
  });

  it("the scheduled maintenance tick sweeps: a delivery lost past the grace period is enqueued again", async () => {
    await createEndpoint(stack.db, { url: receiver.url("/tick"), events: ["test.tick"] });
    const queue = stack.web.queues.webhookDelivery;
    await queue.pause();
    try {
      const event = await publishEvent(stack.web, { type: "test.tick", data: {} });
      const [id] = event.deliveryIds;
      await queue.remove(id!);
      const tick = createMaintenanceProcessor(stack.web);
      // Within the grace period the delivery is left to its (possibly running) job.
      expect(await tick(undefined, { name: "sweep-webhooks" })).toEqual({ requeued: 0, markedFailed: 0 });
      await stack
        .db("webhook_deliveries")
        .where({ id })
        .update({ updated_at: new Date(Date.now() - 120_000) });
      expect(await tick(undefined, { name: "sweep-webhooks" })).toEqual({ requeued: 1, markedFailed: 0 });
      expect(await queue.getJobState(id!)).toBe("waiting");
    } finally {
      await queue.resume();
    }
  });

  it("a publish while Redis refuses the enqueue still commits; the sweeper enqueues it later", async () => {
    await createEndpoint(stack.db, { url: receiver.url("/redis-down"), events: ["test.redis-down"] });
    const refusing = { addBulk: () => Promise.reject(new Error("Connection is closed.")) };
    const event = await publishEvent(
      { ...stack.web, queues: { webhookDelivery: refusing as never } },
      { type: "test.redis-down", data: {} },
    );
    expect(await delivery(event.id)).toMatchObject({ status: "pending", attempts: 0 });
    expect((await sweepPendingDeliveries(stack.web, { graceMs: 0 })).requeued).toEqual(event.deliveryIds);
    await startWorker();
    await waitFor(async () => (await delivery(event.id))?.status === "delivered", { what: "delivered" });
  });

  it("exhausted retries → failed and a dead letter; a redrive delivers it and resolves the letter", async () => {
    await createEndpoint(stack.db, { url: receiver.url("/exhausted"), events: ["test.exhausted"] });
    receiver.status = 503;
    await startWorker();
    const event = await publishEvent(stack.web, { type: "test.exhausted", data: { n: 1 } });
    const [id] = event.deliveryIds;
    await waitFor(async () => (await delivery(event.id))?.status === "failed", { what: "failed" });
    expect(await delivery(event.id)).toMatchObject({ attempts: 3, last_http_status: 503 });
    const letter = await waitFor(() =>
      stack.db("dead_letters").where({ queue: "webhook-delivery", job_id: id }).first(),
    );
    expect(letter.data).toEqual({ deliveryId: id });
    expect(JSON.stringify(letter)).not.toContain("whsec_");

    receiver.status = 200;
    const res = await admin(`/dead-letters/${letter.id}/redrive`, "POST");
    expect(await res.json()).toMatchObject({ outcome: "retried" });
    await waitFor(async () => (await delivery(event.id))?.status === "delivered", { what: "redriven" });
    expect(await delivery(event.id)).toMatchObject({ attempts: 4, last_http_status: 200, last_error: null });
    expect(receiver.received.filter((r) => r.event.id === event.id)).toHaveLength(1);
    await waitFor(async () => (await stack.db("dead_letters").where({ id: letter.id }).first()).resolved_at, {
      what: "the dead letter resolved",
    });
  });
});
