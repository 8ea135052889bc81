import Stripe from "stripe";
import type { State } from "./state.js";
import type { BuiltEvent, WebhookOptions } from "./types.js";
import { API_VERSION, newId, type Obj } from "./util.js";

const STORABLE = new Set(["subscription", "invoice", "customer", "price", "product"]);

/**
 * Builds a snapshot event as Stripe delivers it and signs the exact payload string. By default the
 * object is stored too, so re-fetching it (a subscription, say) returns it.
 */
export function buildSignedEvent(
  state: State,
  type: string,
  object: Obj,
  opts: WebhookOptions,
  defaultSecret: string,
): BuiltEvent {
  const data: Obj = { object };
  if (opts.previousAttributes !== undefined) data.previous_attributes = opts.previousAttributes;
  const event: Obj = {
    id: opts.id ?? newId("evt"),
    object: "event",
    api_version: API_VERSION,
    created: opts.created ?? state.now(),
    data,
    livemode: false,
    pending_webhooks: 1,
    request: { id: null, idempotency_key: null },
    type,
  };
  const payload = JSON.stringify(event, null, 2);
  // Signed with real time: receivers check the signature age against their own clock.
  const header = Stripe.webhooks.generateTestHeaderString({ payload, secret: opts.secret ?? defaultSecret });
  if (opts.store !== false && typeof object.id === "string" && STORABLE.has(String(object.object))) {
    state.put(object);
  }
  return { payload, header, event };
}

export async function deliver(url: string, built: BuiltEvent): Promise<number> {
  const res = await fetch(url, {
    method: "POST",
    headers: {
      "content-type": "application/json; charset=utf-8",
      "stripe-signature": built.header,
      "user-agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
    },
    body: built.payload,
    signal: AbortSignal.timeout(30_000),
  });
  await res.arrayBuffer().catch(() => undefined);
  return res.status;
}
