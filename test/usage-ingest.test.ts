import { describe, expect, it } from "vitest";
import { useStack, waitFor } from "./helpers/stack.js";
import { usageEventRequestId } from "../src/platform/ids.js";
import { validateUsageEvents } from "../src/api/usage-events.js";

// An unknown model is accepted only at this configured default price.
const stack = useStack({ env: { DEFAULT_MODEL_PRICE: "1000000,500000,3000000" } });

type IngestBody = {
  batch_id: string;
  accepted: number;
  rejected: number;
  errors: Array<{ index: number; id: string | null; param: string | null; code: string; message: string }>;
};

async function ingest(key: string, body: unknown) {
  const res = await fetch(`${stack.url}/v1/usage`, {
    method: "POST",
    headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as IngestBody & { error?: { code: string } } };
}

// One snapshot of the job hash: getJob then getState could see "completed" without the result.
const finished = (jobId: string) =>
  waitFor(async () => {
    const job = await stack.web.queues.usage.getJob(jobId);
    return job?.finishedOn && job.returnvalue ? job : undefined;
  });
const rows = (customerId: string) => stack.db("usage_events").where({ customer_id: customerId });
const event = (i: number) => ({
  id: `evt-${i}`,
  model: "gpt-4o-mini",
  prompt_tokens: 100 + i,
  completion_tokens: 10,
  cached_tokens: 50,
  reasoning_tokens: 0,
});

describe("POST /v1/usage", () => {
  it("records 97 of 100 events, reports the 3 bad ones by index, and is idempotent when posted twice", async () => {
    const { customerId, key } = await stack.customer();
    const events: unknown[] = Array.from({ length: 100 }, (_, i) => event(i));
    events[7] = { ...event(7), prompt_tokens: -1 };
    events[42] = { ...event(42), completion_tokens: 1.5 };
    events[99] = { ...event(99), timestamp: new Date(Date.now() - 36 * 86_400_000).toISOString() };

    const first = await ingest(key, { events });
    expect(first.status).toBe(202);
    expect(first.body).toMatchObject({ accepted: 97, rejected: 3 });
    expect(first.body.errors.map((e) => [e.index, e.id, e.code, e.param])).toEqual([
      [7, "evt-7", "invalid_value", "events[7].prompt_tokens"],
      [42, "evt-42", "invalid_value", "events[42].completion_tokens"],
      [99, "evt-99", "timestamp_out_of_range", "events[99].timestamp"],
    ]);
    const job = await finished(first.body.batch_id);
    expect(await rows(customerId)).toHaveLength(97);

    // Once BullMQ forgets the batch, the same batch is a new job: the ledger's unique key guards it.
    await job.remove();
    const again = await ingest(key, { events });
    expect(again.body).toMatchObject({ accepted: 97, batch_id: first.body.batch_id });
    const rerun = await finished(first.body.batch_id);
    expect(rerun.returnvalue).toEqual({ inserted: 0 });
    expect(await rows(customerId)).toHaveLength(97);

    // The same ids in another batch (another job) land on the same rows; only evt-500 is new.
    expect((await ingest(key, { events: [event(3), event(1), event(500)] })).body.accepted).toBe(3);
    await waitFor(async () => (await rows(customerId)).length === 98, { what: "the one new row" });

    const row = (await rows(customerId)).find(
      (r) => r.request_id === usageEventRequestId(customerId, "evt-3"),
    )!;
    // gpt-4o-mini: 53 uncached × 0.15 + 50 cached × 0.075 + 10 out × 0.6 = 7.95 + 3.75 + 6 = 17.7 → 18.
    expect(row).toMatchObject({
      prompt_tokens: 103,
      cached_tokens: 50,
      billable_tokens: 113,
      source: "ingested",
    });
    expect(row.provider_cost_micros).toBe(18);
  });

  it("keeps event ids per customer: another customer's same id is its own row", async () => {
    const a = await stack.customer();
    const b = await stack.customer();
    expect((await ingest(a.key, { events: [event(1)] })).status).toBe(202);
    expect((await ingest(b.key, { events: [event(1)] })).status).toBe(202);
    await waitFor(
      async () => (await rows(a.customerId)).length === 1 && (await rows(b.customerId)).length === 1,
    );
  });

  it("rejects each bad field with its reason and prices an unknown model at the default price", async () => {
    const { customerId, key } = await stack.customer();
    const now = Math.floor(Date.now() / 1000);
    const res = await ingest(key, {
      events: [
        { id: "ok-default-price", model: "house-model", prompt_tokens: 1000, completion_tokens: 1000 },
        { id: "ok-unix", model: "gpt-4o", prompt_tokens: 1, completion_tokens: 1, timestamp: now - 3600 },
        { model: "gpt-4o", prompt_tokens: 1, completion_tokens: 1 },
        { id: "future", model: "gpt-4o", prompt_tokens: 1, completion_tokens: 1, timestamp: now + 3600 },
        { id: "cached", model: "gpt-4o", prompt_tokens: 1, completion_tokens: 1, cached_tokens: 2 },
        { id: "reasoning", model: "gpt-4o", prompt_tokens: 1, completion_tokens: 1, reasoning_tokens: 2 },
        { id: "ok-unix", model: "gpt-4o", prompt_tokens: 1, completion_tokens: 1 },
        { id: "nan", model: "gpt-4o", prompt_tokens: "12", completion_tokens: 1 },
        "not an event",
      ],
    });
    expect(res.status).toBe(202);
    expect(res.body.accepted).toBe(2);
    expect(res.body.errors.map((e) => [e.index, e.code])).toEqual([
      [2, "missing_required_parameter"],
      [3, "timestamp_out_of_range"],
      [4, "invalid_value"],
      [5, "invalid_value"],
      [6, "duplicate_id"],
      [7, "invalid_value"],
      [8, "invalid_event"],
    ]);
    await waitFor(async () => (await rows(customerId)).length === 2);
    const house = (await rows(customerId)).find((r) => r.model === "house-model")!;
    // 1000 × $1/M + 1000 × $3/M = $0.004.
    expect(house.provider_cost_micros).toBe(4_000);
  });

  it("refuses an unknown model unless a default price is configured", () => {
    const events = [{ id: "x", model: "house-model", prompt_tokens: 1, completion_tokens: 1 }];
    expect(validateUsageEvents(events, { defaultPrice: undefined }).errors).toMatchObject([
      { index: 0, code: "model_not_found", param: "events[0].model" },
    ]);
    const priced = validateUsageEvents(events, {
      defaultPrice: { inputPerM: 1, cachedInputPerM: 1, outputPerM: 1 },
    });
    expect(priced.valid).toHaveLength(1);
  });

  it("answers 400 to a malformed batch and to one with no valid event", async () => {
    const { key } = await stack.customer();
    expect((await ingest(key, { events: [] })).status).toBe(400);
    expect((await ingest(key, { events: Array.from({ length: 1001 }, (_, i) => event(i)) })).status).toBe(
      400,
    );
    expect((await ingest(key, { nope: 1 })).body.error?.code).toBe("missing_required_parameter");
    const allBad = await ingest(key, { events: [{ ...event(1), prompt_tokens: -5 }] });
    expect(allBad.status).toBe(400);
    expect(allBad.body.error?.code).toBe("invalid_events");
    expect(allBad.body.errors).toHaveLength(1);
  });
});
