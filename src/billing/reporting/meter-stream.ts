import Stripe from "stripe";
import type { Config } from "../../config.js";
import { STREAM_MAX_EVENTS } from "../../queues/queues.js";
import { stripeAddress, type StripeClient } from "./stripe-client.js";

/** A session is renewed this long before Stripe expires it (15 minutes after creation). */
const RENEW_BEFORE_MS = 60_000;

/** One meter event as the v2 stream takes it: string payload values, an ISO timestamp. */
export interface StreamEvent {
  event_name: string;
  identifier: string;
  payload: { stripe_customer_id: string; value: string };
  timestamp: string;
}

export interface MeterEventStream {
  /** Sends up to 100 events as one request; resolves once Stripe accepted it, else rejects. */
  send(events: readonly StreamEvent[]): Promise<void>;
}

type Deps = {
  stripe: Pick<StripeClient, "v2">;
  config: Pick<Config, "stripeApiBase" | "stripe">;
  /** Milliseconds since the epoch; the session's expiry is compared with it. */
  now?: () => number;
};

interface Session {
  client: Stripe;
  renewAt: number;
}

/**
 * Stripe's v2 meter event stream for one process: one session token, renewed a minute before it
 * expires (and once more when Stripe says it expired). A request carries up to 100 events; every
 * event keeps its report's identifier, so a resend after a crash or a failed request is
 * deduplicated by Stripe, never counted twice. Stripe validates the events after answering: a bad
 * one becomes an error report (a `v1.billing.meter.error_report_triggered` event), so a request's
 * failure is every one of its events' failure.
 */
export function createMeterEventStream(deps: Deps): MeterEventStream {
  const session = createSessionKeeper(deps);
  return {
    async send(events) {
      if (events.length > STREAM_MAX_EVENTS)
        throw new Error(`a meter event stream request carries at most ${STREAM_MAX_EVENTS} events`);
      if (events.length === 0) return;
      await session.withClient((client) =>
        client.v2.billing.meterEventStream.create({ events: [...events] }),
      );
    },
  };
}

interface SessionKeeper {
  withClient<T>(call: (client: Stripe) => Promise<T>): Promise<T>;
}

/** Keeps one live session; concurrent callers share the request that opens the next one. */
function createSessionKeeper(deps: Deps): SessionKeeper {
  const now = deps.now ?? Date.now;
  let live: Session | undefined;
  let opening: Promise<Session> | undefined;

  const open = async (): Promise<Session> => {
    const created = await deps.stripe.v2.billing.meterEventSession.create();
    const client = new Stripe(created.authentication_token, {
      ...stripeAddress(deps.config.stripeApiBase),
      timeout: deps.config.stripe.timeoutMs,
      // BullMQ owns retries and backoff, as for v1 calls.
      maxNetworkRetries: 0,
      appInfo: { name: "meterline" },
    });
    return { client, renewAt: Date.parse(created.expires_at) - RENEW_BEFORE_MS };
  };
  const current = (): Promise<Session> => {
    if (live && now() < live.renewAt) return Promise.resolve(live);
    opening ??= open()
      .then((s) => (live = s))
      .finally(() => (opening = undefined));
    return opening;
  };

  return {
    async withClient(call) {
      const session = await current();
      try {
        return await call(session.client);
      } catch (err) {
        if (!isSessionRefused(err)) throw err;
        // Expired early (a clock ahead of ours) or revoked: one new session, one more try.
        if (live === session) live = undefined;
        return call((await current()).client);
      }
    },
  };
}

/** Stripe refused the session token itself, not the events. */
function isSessionRefused(err: unknown): boolean {
  return (
    err instanceof Stripe.errors.TemporarySessionExpiredError ||
    err instanceof Stripe.errors.StripeAuthenticationError
  );
}
