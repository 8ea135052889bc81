import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { publishEvent } from "../src/notifications/publish.js";
import { verifySignature } from "../src/notifications/signature.js";
import { ADMIN_TOKEN, useStack, waitFor } from "./helpers/stack.js";
import { startReceiver } from "./helpers/webhook-receiver.js";

const stack = useStack({
  env: { WEBHOOK_ATTEMPTS: "200", WEBHOOK_BACKOFF_MS: "20", WEBHOOK_MAX_BACKOFF_MS: "150" },
});
let receiver: Awaited<ReturnType<typeof startReceiver>>;
beforeAll(async () => {
  receiver = await startReceiver();
});
afterAll(async () => {
  await receiver.close();
});

const admin = (path: string, init: RequestInit = {}) =>
  fetch(`${stack.url}/admin${path}`, {
    ...init,
    headers: { authorization: `Bearer ${ADMIN_TOKEN}`, "content-type": "application/json" },
  });

/** Registers an endpoint through the admin API; each test filters on its own event types. */
async function addEndpoint(path: string, events: string[]): Promise<{ id: string; secret: string }> {
  const res = await admin("/webhook-endpoints", {
    method: "POST",
    body: JSON.stringify({ url: receiver.url(path), events }),
  });
  expect(res.status).toBe(201);
  return (await res.json()) as { id: string; secret: string };
}

const deps = () => stack.web;
const receivedAt = (path: string) => receiver.received.filter((r) => r.path === path);

describe("outgoing webhooks", () => {
  it("posts {id, type, created, data} signed with the endpoint's secret; the receiver's check passes", async () => {
    const endpoint = await addEndpoint("/signed", ["test.signed"]);
    expect(endpoint.secret).toMatch(/^whsec_/);
    const listed = await (await admin("/webhook-endpoints")).json();
    expect(JSON.stringify(listed)).not.toContain(endpoint.secret);

    const event = await publishEvent(deps(), { type: "test.signed", data: { customer: "c1", share: 0.8 } });
    const [got] = await waitFor(() => (receivedAt("/signed").length ? receivedAt("/signed") : undefined));
    expect(got!.event).toEqual({
      id: event.id,
      type: "test.signed",
      created: expect.any(Number),
      data: { customer: "c1", share: 0.8 },
    });
    const header = got!.headers["meterline-signature"] as string;
    expect(verifySignature(header, got!.body, endpoint.secret, 300)).toBe(true);
    expect(verifySignature(header, got!.body.replace("c1", "c2"), endpoint.secret, 300)).toBe(false);
    expect(
      verifySignature(header, got!.body, endpoint.secret, 300, Math.floor(Date.now() / 1000) + 900),
    ).toBe(false);

    // The receiver answers before the worker records the delivery: wait for the record to settle.
    const log = await waitFor(async () => {
      const body = (await (await admin(`/webhook-deliveries?endpoint=${endpoint.id}`)).json()) as {
        data: Array<{ status: string }>;
      };
      return body.data.some((d) => d.status !== "pending") ? body : undefined;
    });
    expect(log.data).toEqual([
      expect.objectContaining({ eventId: event.id, status: "delivered", attempts: 1, lastHttpStatus: 200 }),
    ]);
  });

  it("refuses a bad endpoint with a 400 naming the field", async () => {
    const res = await admin("/webhook-endpoints", {
      method: "POST",
      body: JSON.stringify({ url: "ftp://x" }),
    });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: unknown }).error).toMatchObject({
      type: "invalid_request_error",
      param: "url",
    });
  });

  it("publishing the same event id twice makes one event, one delivery, one POST", async () => {
    await addEndpoint("/twice", ["test.twice"]);
    const first = await publishEvent(deps(), { id: "evt_twice_1", type: "test.twice", data: { n: 1 } });
    const again = await publishEvent(deps(), { id: "evt_twice_1", type: "test.twice", data: { n: 2 } });
    expect(first.created).toBe(true);
    expect(again.created).toBe(false);
    await waitFor(() => receivedAt("/twice").length === 1);
    await publishEvent(deps(), { id: "evt_twice_1", type: "test.twice", data: { n: 3 } });
    // A later event through the same endpoint shows the queue has moved past any duplicate.
    await publishEvent(deps(), { id: "evt_twice_2", type: "test.twice", data: {} });
    await waitFor(() => receivedAt("/twice").length >= 2);
    expect(receivedAt("/twice").map((r) => r.event.id)).toEqual(["evt_twice_1", "evt_twice_2"]);
    expect(receivedAt("/twice")[0]!.event.data).toEqual({ n: 1 });
    expect(await stack.db("webhook_events").where({ id: "evt_twice_1" }).count("* as n").first()).toEqual({
      n: 1,
    });
    expect(
      await stack.db("webhook_deliveries").where({ event_id: "evt_twice_1" }).count("* as n").first(),
    ).toEqual({ n: 1 });
  });

  it("a receiver down at first (refused, then 500s) gets every event afterwards, once per endpoint", async () => {
    const a = await addEndpoint("/outage-a", ["test.outage"]);
    const b = await addEndpoint("/outage-b", ["test.outage"]);
    await receiver.down();
    const events = [];
    for (let i = 0; i < 20; i++)
      events.push(await publishEvent(deps(), { type: "test.outage", data: { i } }));
    const ids = events.map((e) => e.id);
    const attemptsAtLeast = (n: number) => async () => {
      const rows = await stack.db("webhook_deliveries").whereIn("event_id", ids).select("attempts");
      return rows.length === 40 && rows.every((r) => r.attempts >= n);
    };
    await waitFor(attemptsAtLeast(2), { what: "two refused attempts per delivery" });
    const refused = await stack.db("webhook_deliveries").whereIn("event_id", ids).first("last_error");
    expect(refused.last_error).toMatch(/network error/);
    receiver.status = 500;
    await receiver.up();
    await waitFor(attemptsAtLeast(4), { what: "500s answered" });
    expect(receivedAt("/outage-a")).toHaveLength(0);
    receiver.status = 200;

    await waitFor(
      async () =>
        (
          await stack
            .db("webhook_deliveries")
            .whereIn("event_id", ids)
            .where({ status: "delivered" })
            .count("* as n")
            .first()
        )?.n === 40,
      { timeoutMs: 30_000, what: "every delivery delivered" },
    );
    for (const [path, endpoint] of [
      ["/outage-a", a],
      ["/outage-b", b],
    ] as const) {
      const got = receivedAt(path).map((r) => r.event.id);
      expect(got.toSorted()).toEqual(ids.toSorted());
      for (const r of receivedAt(path))
        expect(verifySignature(r.headers["meterline-signature"] as string, r.body, endpoint.secret)).toBe(
          true,
        );
    }
  }, 60_000);
});
