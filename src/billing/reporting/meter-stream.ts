import Stripe from "stripe";
import type { Config } from "../../config.js";
import { stripeAddress, type StripeClient } from "./stripe-client.js";

/** Most events Stripe accepts in one meter event stream request. */
export const STREAM_MAX_EVENTS = 100;
/** A session is renewed this long before Stripe expires it (15 minutes after creation). */
const RENEW_BEFORE_MS = 60_000;
/** How long a lone event waits for others to share its request. */
const LINGER_MS = 5;

/** One meter event as the v2 stream takes it: string payload values, an ISO timestamp. */
export interface StreamEvent {
  event_name: string;
  identifier: string;
  payload: { stripe_customer_id: string; value: string };
  timestamp: string;
}

export interface MeterEventStream {
  /** Resolves once the request carrying this event was accepted; rejects with that request's error. */
  send(event: StreamEvent): Promise<void>;
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

interface Waiting {
  event: StreamEvent;
  resolve: () => void;
  reject: (err: unknown) => void;
}

/**
 * The API a report goes through: REPORTING_METER_API=v1|v2 decides for every report; "auto" follows
 * the flush that claimed it (`api` in its job), so the stream serves high rates and v1 the rest.
 */
export function meterApiFor(config: Pick<Config, "reporting">, claimed?: "v1" | "v2"): "v1" | "v2" {
  const { meterApi } = config.reporting;
  return meterApi === "auto" ? (claimed ?? "v1") : meterApi;
}

/** What a flush that claimed `reports` reports asks of its jobs under "auto"; undefined is v1. */
export function flushMeterApi(config: Pick<Config, "reporting">, reports: number): "v2" | undefined {
  const { meterApi, streamMinReports } = config.reporting;
  return meterApi === "auto" && reports >= streamMinReports ? "v2" : undefined;
}

/**
 * Stripe's v2 meter event stream for one process: one session token, renewed a minute before it
 * expires (and once more when Stripe says it expired), and events gathered into requests of up to
 * 100. Every event keeps its report's identifier, so a resend after a crash or a failed request is
 * deduplicated by Stripe, never counted twice. A request's failure is every one of its events'
 * failure: each report retries on its own, as on v1.
 */
export function createMeterEventStream(deps: Deps): MeterEventStream {
  const session = createSessionKeeper(deps);
  let waiting: Waiting[] = [];
  let timer: NodeJS.Timeout | undefined;

  const dispatch = () => {
    clearTimeout(timer);
    timer = undefined;
    const batch = waiting.slice(0, STREAM_MAX_EVENTS);
    waiting = waiting.slice(STREAM_MAX_EVENTS);
    if (waiting.length > 0) timer = setTimeout(dispatch, LINGER_MS);
    void sendBatch(session, batch);
  };

  return {
    send: (event) =>
      new Promise<void>((resolve, reject) => {
        waiting.push({ event, resolve, reject });
        if (waiting.length >= STREAM_MAX_EVENTS) dispatch();
        else timer ??= setTimeout(dispatch, LINGER_MS);
      }),
  };
}

/** One stream request for `batch`; it settles every event's promise. */
async function sendBatch(session: SessionKeeper, batch: Waiting[]): Promise<void> {
  try {
    const events = batch.map((w) => w.event);
    await session.withClient((client) => client.v2.billing.meterEventStream.create({ events }));
    for (const w of batch) w.resolve();
  } catch (err) {
    for (const w of batch) w.reject(err);
  }
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
