import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { Worker } from "bullmq";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createStripeEventProcessor } from "../jobs/stripe-event.js";
import { attachDeadLetters } from "../src/queues/dead-letters.js";
import { wrapProcessor } from "../src/queues/processor.js";
import { invoiceObject } from "../src/local/stripe-emulator.js";
import { QUEUE, queuePrefix } from "../src/queues/queues.js";
import { createWorkerRedis } from "../src/platform/redis.js";
import { ADMIN_TOKEN, useStack, waitFor } from "./helpers/stack.js";
import { waitForEvents } from "./helpers/stripe-webhooks.js";

// No stack worker: the file runs the stripe-event processor itself, with a flush it can break.
const stack = useStack({
  worker: false,
  stripe: "webhooks",
  env: { STRIPE_EVENT_ATTEMPTS: "3", STRIPE_EVENT_BACKOFF_MS: "10" },
});
let worker: Worker;
let customerId: string;
let broken = true;
const flushed: string[] = [];

beforeAll(async () => {
  // The real processor and dead-letter recorder, with a usage flush that fails until it is fixed.
  const flushCustomer = async (id: string) => {
    if (broken) throw new Error("usage flush failed: Stripe meter API unreachable");
    flushed.push(id);
  };
  const { config, db, logger, queues, metrics, creditCounter } = stack.web;
  worker = new Worker(
    QUEUE.stripeEvent,
    wrapProcessor(
      QUEUE.stripeEvent,
      createStripeEventProcessor({ db, logger, queues, config, flushCustomer, metrics, creditCounter }),
    ),
    {
      connection: createWorkerRedis("redis://127.0.0.1:6379"),
      prefix: queuePrefix(config.queuePrefix, QUEUE.stripeEvent),
    },
  );
  attachDeadLetters(worker, db, logger);
  await worker.waitUntilReady();
  customerId = (await stack.customer()).customerId;
  await db("customers").where({ id: customerId }).update({ stripe_customer_id: "cus_dlq" });
});
afterAll(async () => {
  await worker?.close();
});

const admin = async (method: string, path: string, token: string | null = ADMIN_TOKEN) => {
  const res = await fetch(`${stack.url}/admin${path}`, {
    method,
    headers: token ? { authorization: `Bearer ${token}` } : {},
  });
  return { status: res.status, body: (await res.json()) as AdminBody };
};
type Letter = { id: number; job_id: string };
type AdminBody = { data: Letter[]; error: { code: string } } & Record<string, unknown>;

async function deadInvoiceCreated(): Promise<{ eventId: string; letterId: number }> {
  const invoice = invoiceObject({
    customer: "cus_dlq",
    subscription: "sub_dlq",
    status: "draft",
    amount_due: 0,
  });
  const { status, event } = await stack.stripe.sendWebhook("invoice.created", invoice);
  expect(status).toBe(200);
  const eventId = String(event.id);
  const letter = await waitFor(
    async () => {
      const { body } = await admin("GET", "/dead-letters?queue=stripe-event");
      return body.data.find((l) => l.job_id === eventId);
    },
    { what: "a dead letter for the event" },
  );
  return { eventId, letterId: letter.id };
}

describe("stripe-event dead letters", () => {
  it("retries, dead-letters, and after the fix a redrive applies the event exactly once", async () => {
    broken = true;
    const { eventId, letterId } = await deadInvoiceCreated();
    const { body } = await admin("GET", "/dead-letters?queue=stripe-event");
    expect(body.data.find((l) => l.id === letterId)).toMatchObject({
      queue: "stripe-event",
      name: "apply",
      attempts: 3,
      reason: "usage flush failed: Stripe meter API unreachable",
      resolved_at: null,
    });
    await waitForEvents(stack.db, [eventId]);
    expect(await stack.db("stripe_events").where({ id: eventId }).first()).toMatchObject({
      status: "dead",
      attempts: 3,
    });
    expect(await (await stack.web.queues.stripeEvent.getJob(eventId))?.getState()).toBe("failed");
    expect(flushed).toEqual([]);
    const webhooks = await stack.web.metrics.webhookEvents.get();
    const count = (outcome: string) =>
      webhooks.values.find((v) => v.labels.type === "invoice.created" && v.labels.outcome === outcome)?.value;
    expect([count("received"), count("retry"), count("dead")]).toEqual([1, 2, 1]);

    broken = false;
    expect(await admin("POST", `/dead-letters/${letterId}/redrive`)).toEqual({
      status: 200,
      body: { id: letterId, outcome: "retried" },
    });
    await waitFor(async () => (await stack.db("dead_letters").where({ id: letterId }).first()).resolved_at, {
      what: "the dead letter to resolve",
    });
    expect(await stack.db("stripe_events").where({ id: eventId }).first()).toMatchObject({
      status: "processed",
      attempts: 4,
    });
    expect(flushed).toEqual([customerId]);

    // Redriving again, one by one or all, does no harm.
    expect((await admin("POST", `/dead-letters/${letterId}/redrive`)).body).toEqual({
      id: letterId,
      outcome: "resolved",
    });
    expect((await admin("POST", "/dead-letters/redrive?queue=stripe-event")).body).toEqual({
      object: "list",
      data: [],
    });
    expect(flushed).toEqual([customerId]);
  });

  it("lists and redrives from the CLI", async () => {
    broken = true;
    const { eventId, letterId } = await deadInvoiceCreated();
    broken = false;
    const env = {
      ...process.env,
      DATABASE_URL: stack.config.databaseUrl,
      REDIS_URL: "redis://127.0.0.1:6379",
      QUEUE_PREFIX: stack.config.queuePrefix,
      LOG_LEVEL: "silent",
    };
    const cli = (...args: string[]) =>
      promisify(execFile)("npx", ["tsx", "src/cli.ts", ...args, "--json"], { env, timeout: 60_000 });
    const listed = JSON.parse((await cli("dlq:list", "--queue", "stripe-event")).stdout) as Array<{
      id: number;
    }>;
    expect(listed.map((l) => l.id)).toEqual([letterId]);
    const redriven = JSON.parse((await cli("dlq:redrive", "--all")).stdout);
    expect(redriven).toEqual([{ id: letterId, outcome: "retried" }]);
    await waitForEvents(stack.db, [eventId]);
    await waitFor(
      async () => (await stack.db("stripe_events").where({ id: eventId }).first()).status === "processed",
      {
        what: "the redriven event",
      },
    );
    expect(flushed).toEqual([customerId, customerId]);
    expect(JSON.parse((await cli("dlq:redrive", String(letterId))).stdout)).toEqual([
      { id: letterId, outcome: expect.stringMatching(/^(resolved|already-pending)$/) },
    ]);
  }, 180_000); // three CLI runs: tsx compiles on start, slow on a busy machine

  it("answers admin API mistakes with clear 4xx errors", async () => {
    expect((await admin("GET", "/dead-letters", null)).status).toBe(401);
    expect((await admin("GET", "/dead-letters?status=maybe")).status).toBe(400);
    const bad = await admin("POST", "/dead-letters/abc/redrive");
    expect(bad.status).toBe(400);
    expect(bad.body.error.code).toBe("invalid_id");
    expect((await admin("POST", "/dead-letters/999999/redrive")).status).toBe(404);
    expect((await admin("POST", "/dead-letters/redrive?queue=nope")).status).toBe(400);
  });
});
