import type Stripe from "stripe";
import { describe, expect, it } from "vitest";
import { findMeter, requireMeter } from "../src/billing/reporting/meters.js";
import type { StripeClient } from "../src/billing/reporting/stripe-client.js";

const meter = (id: string, eventName: string) => ({ id, event_name: eventName }) as Stripe.Billing.Meter;

/** A Stripe client whose active meters are `pages`, read one page at a time; `read` counts pages fetched. */
function stripeWith(pages: Stripe.Billing.Meter[][]) {
  const read = { pages: 0 };
  async function* list() {
    for (const page of pages) {
      read.pages += 1;
      yield* page;
    }
  }
  const stripe = { billing: { meters: { list } } } as unknown as Pick<StripeClient, "billing">;
  return { stripe, read };
}

describe("the meter lookup", () => {
  it("takes the first active meter with the event name and reads no page past it", async () => {
    // Stripe refuses a second active meter with one event name; the later match stands for a page
    // that must not be fetched at all.
    const { stripe, read } = stripeWith([
      [meter("mtr_other", "other_tokens"), meter("mtr_first", "meterline_tokens")],
      [meter("mtr_later", "meterline_tokens")],
    ]);
    expect((await findMeter(stripe, "meterline_tokens"))?.id).toBe("mtr_first");
    expect(read.pages).toBe(1);
  });

  it("finds nothing, or says to run stripe:setup, when no active meter has the event name", async () => {
    const { stripe } = stripeWith([[meter("mtr_other", "other_tokens")], []]);
    expect(await findMeter(stripe, "meterline_tokens")).toBeUndefined();
    await expect(requireMeter(stripe, "meterline_tokens")).rejects.toThrow(/stripe:setup/);
  });
});
