import type { Section } from "../lib/context.js";
import { ms } from "../lib/context.js";
import { requireAccepted, runLoad } from "../lib/load.js";
import { invoiceObject, type BuiltEvent } from "../../src/local/stripe-emulator.js";

/**
 * (g) `POST /webhooks/stripe` (issue 5): distinct events signed by the Stripe emulator with the
 * web process's STRIPE_WEBHOOK_SECRET, sent as fast as the API takes them. Intake only: the
 * stripe-event worker is not measured here.
 */
export const webhookIntake: Section = async (ctx) => {
  const { stack, options } = ctx;
  const web = await stack.web();
  const url = `${web.url}/webhooks/stripe`;
  const stripe = await stack.stripeEmulator();
  const count = Math.min(20_000, Math.max(500, Math.round(options.duration * 4_000)));
  const events: BuiltEvent[] = Array.from({ length: count }, (_, i) =>
    stripe.buildEvent(
      "invoice.paid",
      invoiceObject({
        customer: `cus_bench${i % 50}`,
        subscription: `sub_bench${i % 50}`,
        status: "paid",
        amount_due: 1200,
      }),
      { store: false },
    ),
  );
  let next = 0;
  ctx.log(`g. webhook intake (${count} distinct signed events, reused round robin)`);
  const r = await runLoad(
    {
      url,
      method: "POST",
      connections: options.connections,
      requests: [
        {
          method: "POST",
          setupRequest: (req) => {
            const event = events[next++ % events.length]!;
            return {
              ...req,
              headers: { "content-type": "application/json", "stripe-signature": event.header },
              body: event.payload,
            };
          },
        },
      ],
    },
    options.duration,
    options.warmup,
  );
  requireAccepted(r, "POST /webhooks/stripe");
  const failed = r.failures ? `, ${r.failures} failed: ${JSON.stringify(r.statuses)}` : "";
  return [
    {
      id: "g1",
      label: `webhook intake, ${options.connections} connections`,
      value: r.rps,
      unit: "req/s",
      detail: `p50 ${ms(r.p50)}${failed}`,
    },
    { id: "g2", label: "webhook intake p99", value: r.p99, unit: "ms" },
  ];
};
