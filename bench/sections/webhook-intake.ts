import type { Section } from "../lib/context.js";
import { ms } from "../lib/context.js";
import { runLoad } from "../lib/load.js";
import { unavailable } from "../lib/table.js";
import { invoiceObject, type BuiltEvent } from "../../src/local/stripe-emulator.js";

const NOT_BUILT = "n/a (not built yet)";

/**
 * (g) `POST /webhooks/stripe` (issue 5): distinct events signed by the Stripe emulator with the
 * web process's STRIPE_WEBHOOK_SECRET, sent as fast as the API takes them. Intake only: the
 * stripe-event worker is not measured here. Reports n/a while the route answers 404.
 */
export const webhookIntake: Section = async (ctx) => {
  const { stack, options } = ctx;
  const web = await stack.web();
  const url = `${web.url}/webhooks/stripe`;
  const probe = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: "{}",
  });
  if (probe.status === 404) return [unavailable("g1", "webhook intake via POST /webhooks/stripe", NOT_BUILT)];

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
