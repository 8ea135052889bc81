import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Cluster } from "ioredis";
import { publishEvent } from "../src/notifications/publish.js";
import { flushUsage } from "../src/billing/reporting/usage-flush.js";
import { chatStreamKey } from "../src/chat/stream/protocol.js";
import { queuePrefix, QUEUE } from "../src/queues/queues.js";
import { ADMIN_TOKEN, ask, useStack, waitFor } from "./helpers/stack.js";
import { ledgerTotal, reportsOf } from "./helpers/reporting.js";
import { startReceiver } from "./helpers/webhook-receiver.js";

// The whole stack on a private 3-master Redis Cluster (REDIS_CLUSTER_NODES), each path once.
const stack = useStack({
  redis: "cluster",
  stripe: "reporting",
  env: { WEBHOOK_BACKOFF_MS: "20", WEBHOOK_MAX_BACKOFF_MS: "150" },
});
let receiver: Awaited<ReturnType<typeof startReceiver>>;
beforeAll(async () => {
  receiver = await startReceiver();
});
afterAll(async () => {
  await receiver.close();
});

const rowsOf = (customerId: string) => stack.db("usage_events").where({ customer_id: customerId });
const poll = async (location: string, key: string) => {
  const res = await fetch(`${stack.url}${location}`, { headers: { authorization: `Bearer ${key}` } });
  return (await res.json()) as {
    status: string;
    completion?: { choices: Array<{ message: { content: string } }> };
  };
};

describe("meterline on a Redis Cluster", () => {
  it("connects every role through ioredis' Cluster, and each queue has a hash slot of its own", async () => {
    expect(stack.config.redisUrl).toBe(stack.redisCluster.url);
    expect(stack.web.redis).toBeInstanceOf(Cluster);
    const cluster = stack.web.redis as Cluster;
    // Each queue's keys share one hash tag, and the queues' tags differ, so the cluster can spread
    // the queues over its masters. (Which master serves which slot depends on the run's random
    // prefix: with three masters all four queues land on one master about once in 27 runs, so the
    // test asserts the slots, not the masters.)
    const slots = new Set(
      await Promise.all(
        [QUEUE.chat, QUEUE.usage, QUEUE.stripeReport, QUEUE.webhookDelivery].map(
          async (queue) =>
            (await cluster.cluster(
              "KEYSLOT",
              `${queuePrefix(stack.config.queuePrefix, queue)}:id`,
            )) as number,
        ),
      ),
    );
    expect(slots.size).toBe(4);
  });

  it("answers a sync chat, an async chat and a keyed chat (repeat answers the stored outcome), one usage row each", async () => {
    const { customerId, key } = await stack.customer();
    const sync = await stack.chat(key, ask("sync on a cluster"));
    expect(sync.status).toBe(200);
    expect(sync.content).toMatch(/^Echo: sync on a cluster/);

    const queued = await stack.chat(key, ask("async on a cluster"), { headers: { prefer: "respond-async" } });
    expect(queued.status).toBe(202);
    const done = await waitFor(async () => {
      const body = await poll(queued.headers.get("location")!, key);
      return body.status === "succeeded" ? body : undefined;
    });
    expect(done.completion?.choices[0]?.message.content).toMatch(/^Echo: async on a cluster/);

    const headers = { "idempotency-key": "cluster-keyed-1" };
    const first = await stack.chat(key, ask("keyed on a cluster"), { headers });
    const again = await stack.chat(key, ask("keyed on a cluster"), { headers });
    expect(first.status).toBe(200);
    expect(again.requestId).toBe(first.requestId);
    expect(again.content).toBe(first.content);

    const rows = await rowsOf(customerId);
    expect(rows.map((r) => r.request_id).sort()).toEqual(
      [sync.requestId, queued.requestId, first.requestId].sort(),
    );
  });

  it("streams a chat through the stream reader's XREAD, with the usage chunk matching the one row", async () => {
    const { customerId, key } = await stack.customer();
    const streamed = await stack.chat(
      key,
      ask("stream on a cluster", { stream: true, stream_options: { include_usage: true } }),
    );
    expect(streamed.status).toBe(200);
    expect(streamed.content).toMatch(/^Echo: stream on a cluster/);
    const usage = streamed.chunks.find((c) => c.usage)?.usage;
    const [row] = await rowsOf(customerId);
    expect(row).toMatchObject({ request_id: streamed.requestId, billable_tokens: usage?.total_tokens });
    // Several streams at once share the one XREAD: their keys share the chat queue's hash tag.
    const many = await Promise.all(
      [1, 2, 3, 4].map((i) => stack.chat(key, ask(`stream ${i}`, { stream: true }))),
    );
    expect(many.map((m) => m.content)).toEqual([1, 2, 3, 4].map((i) => `Echo: stream ${i}`));
    const keys = many.map((m) => chatStreamKey(stack.config, m.requestId!));
    const slots = await Promise.all(keys.map((k) => (stack.web.redis as Cluster).cluster("KEYSLOT", k)));
    expect(new Set(slots).size).toBe(1);
  });

  it("ingests usage events through the usage queue", async () => {
    const { customerId, key } = await stack.customer();
    const events = [1, 2, 3].map((i) => ({
      id: `ev-${i}`,
      model: "gpt-4o-mini",
      prompt_tokens: 100,
      completion_tokens: i,
    }));
    const res = await fetch(`${stack.url}/v1/usage`, {
      method: "POST",
      headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
      body: JSON.stringify({ events }),
    });
    expect(res.status).toBe(202);
    await waitFor(async () => (await rowsOf(customerId)).length === 3, { what: "3 ingested rows" });
    expect(await ledgerTotal(stack.db, customerId)).toBe(306);
  });

  it("reports usage to the Stripe emulator: one meter event per window, totals equal to the ledger", async () => {
    const { customerId, key } = await stack.customer();
    const { id: stripeId } = stack.stripe.createCustomer();
    await stack.db("customers").where({ id: customerId }).update({ stripe_customer_id: stripeId });
    for (const i of [1, 2]) expect((await stack.chat(key, ask(`report ${i}`))).status).toBe(200);
    await flushUsage(stack.web, { customerId });
    await waitFor(
      async () => {
        const reports = await reportsOf(stack.db, customerId);
        return reports.length > 0 && reports.every((r) => r.status === "sent");
      },
      { what: "reports sent" },
    );
    expect(stack.stripe.totalFor(stripeId, "meterline_tokens")).toBe(await ledgerTotal(stack.db, customerId));
  });

  it("delivers a signed outgoing webhook through the delivery queue", async () => {
    const res = await fetch(`${stack.url}/admin/webhook-endpoints`, {
      method: "POST",
      headers: { authorization: `Bearer ${ADMIN_TOKEN}`, "content-type": "application/json" },
      body: JSON.stringify({ url: receiver.url("/cluster"), events: ["test.cluster"] }),
    });
    expect(res.status).toBe(201);
    const event = await publishEvent(stack.web, { type: "test.cluster", data: { on: "cluster" } });
    const got = await waitFor(() => receiver.received.find((r) => r.path === "/cluster"), {
      what: "the webhook",
    });
    expect(got.event).toMatchObject({ id: event.id, type: "test.cluster", data: { on: "cluster" } });
  });
});
