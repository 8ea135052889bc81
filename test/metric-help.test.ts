import { describe, expect, it } from "vitest";
import { createMetrics } from "../src/platform/metrics.js";
import type { StripeEventOutcome } from "../src/billing/webhooks/stripe-event-handlers.js";

// Every status the stripe-event worker counts: typed, so a new or renamed status fails to compile here.
const WORKER_STATUSES: Record<StripeEventOutcome["status"], true> = { processed: true, ignored: true };

describe("metric help texts", () => {
  it("name the webhook outcomes the worker emits, and no other", async () => {
    const { help } = await createMetrics(() => []).webhookEvents.get();
    const named = /worker's status \(([^)]*)\)/.exec(help)?.[1]?.split(/,\s*/);
    expect(named?.toSorted()).toEqual(Object.keys(WORKER_STATUSES).toSorted());
  });
});
