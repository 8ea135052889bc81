import { describe, expect, it } from "vitest";
import { upsertPlan } from "../src/billing/pricing/plans.js";
import { useStack } from "./helpers/stack.js";

const stack = useStack();

// Requests do not spend prepaid credits yet: a customer on a prepaid plan must be refused, never
// served with usage that neither credits nor the invoice would pay.
describe("a customer on a prepaid plan", () => {
  it("is refused chats and usage events with a 402 that says why, and nothing is queued or billed", async () => {
    await upsertPlan(stack.db, {
      id: "prepaid-gate",
      name: "Prepaid",
      kind: "prepaid",
      overagePer1kMicros: 2_000,
    });
    const { customerId, key } = await stack.customer({ planId: "prepaid-gate" });

    const chat = await stack.chat(key, { model: "gpt-4o-mini", messages: [{ role: "user", content: "hi" }] });
    expect(chat.status).toBe(402);
    expect(chat.body).toMatchObject({ error: { code: "plan_not_served", type: "insufficient_quota" } });

    const events = await fetch(`${stack.url}/v1/usage`, {
      method: "POST",
      headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
      body: JSON.stringify({
        events: [{ id: "e1", model: "gpt-4o-mini", prompt_tokens: 10, completion_tokens: 5 }],
      }),
    });
    expect(events.status).toBe(402);

    const summary = await fetch(`${stack.url}/v1/usage`, { headers: { authorization: `Bearer ${key}` } });
    expect(summary.status).toBe(200);
    expect(await stack.db("usage_events").where({ customer_id: customerId }).count({ n: "*" })).toEqual([
      { n: 0 },
    ]);
    expect(await stack.web.queues.chat.getJobCounts("waiting", "active", "completed")).toEqual({
      waiting: 0,
      active: 0,
      completed: 0,
    });
  });
});
