export interface StripeFaults {
  /** Share 0..1 of API calls answered 500 `api_error`. */
  rate500?: number;
  /** Share answered 429 (`Stripe-Rate-Limited-Reason: global-rate`). */
  rate429?: number;
  /** Share whose socket is destroyed before the call is handled (nothing happened server-side). */
  rateDrop?: number;
  /** Share that IS handled (state changes, idempotent result stored) but whose socket is then destroyed. */
  rateDropAfter?: number;
  /** Added latency per call in ms: a fixed number, or [min, max] drawn uniformly (from the seeded PRNG). */
  slowMs?: number | [number, number];
  /** Only apply to paths starting with one of these (default: every /v1 and /v2 path). */
  paths?: string[];
  /** Deterministic PRNG seed (default random). */
  seed?: number;
}

/** 500/429/400 answer with that status; "drop" destroys the socket unanswered and unhandled;
 * "drop-after" handles the call, then destroys the socket (the client never sees the result). */
export type FailStatus = 500 | 429 | 400 | "drop" | "drop-after";

export interface FailNextOptions {
  /** Path prefix, optionally preceded by a method: "/v1/billing/meter_events" or "POST /v1/prices". */
  path?: string;
  message?: string;
}

export interface StripeEmulatorOptions {
  host?: string;
  port?: number;
  /** When set, only this secret key is accepted; else any "sk_test_…" or "sk_live_…" key. */
  apiKey?: string;
  /** Signing secret for webhooks (default "whsec_meterline_emulator"). */
  webhookSecret?: string;
  /** Where sendWebhook delivers events. */
  webhookUrl?: string;
  /** Clock in epoch milliseconds (default Date.now); used for created/timestamp checks. */
  clock?: () => number;
}

export interface MeterEventRecord {
  identifier: string;
  event_name: string;
  customer: string;
  value: number;
  timestamp: number;
  created: number;
}

export interface WebhookOptions {
  previousAttributes?: Record<string, unknown>;
  created?: number;
  id?: string;
  url?: string;
  secret?: string;
  /** Save `object` (subscription, invoice, customer, price, product) so later reads return it. Default true. */
  store?: boolean;
}

export interface BuiltEvent {
  payload: string;
  header: string;
  event: Record<string, unknown>;
}

/** One delivery of an event; status is null when there was no endpoint or it was unreachable. */
export interface WebhookDelivery {
  status: number | null;
  event: Record<string, unknown>;
}

export interface CompleteCheckoutOptions {
  /** The card paid with, a test token: "pm_card_visa" (default); a declining one
   * ("pm_card_chargeDeclined") leaves the session open and rejects with the 402 card_error. */
  card?: string;
}

export interface MeterErrorReport {
  code: string;
  message: string;
  event_name?: string;
  identifier?: string;
  customer?: string;
}

export interface StripeEmulator {
  url: string;
  host: string;
  port: number;
  webhookSecret: string;
  setFaults(f: StripeFaults): void;
  failNext(n: number, status: FailStatus, opts?: FailNextOptions): void;
  clearFaults(): void;
  /** Requests by "METHOD /path-template" (e.g. "POST /v1/billing/meter_events"), faulted ones included. */
  calls: Record<string, number>;
  meterEvents(): MeterEventRecord[];
  totalFor(customer: string, eventName?: string): number;
  removeMeterEvent(identifier: string): void;
  /** Highest number of meter-event calls for one (customer, event_name) in flight at once,
   * counting the ones rejected for concurrency. Stays 1 if the client never overlaps. */
  readonly maxConcurrentPerCustomerMeter: number;
  /** Meter-event calls that arrived while another for the same (customer, event_name) was in flight. */
  readonly concurrencyViolations: number;
  /** Problems Stripe reports asynchronously (meter event stream validation). */
  errorReports(): MeterErrorReport[];
  /** Zero calls, maxConcurrentPerCustomerMeter and concurrencyViolations. */
  resetStats(): void;
  createCustomer(params?: {
    email?: string;
    name?: string;
    id?: string;
    metadata?: Record<string, string>;
  }): {
    id: string;
  } & Record<string, unknown>;
  /** Insert or replace a stored object (by its `object` and `id`), e.g. a subscription in a new state. */
  putObject(object: Record<string, unknown>): void;
  getObject(id: string): Record<string, unknown> | undefined;
  /**
   * Past Stripe's 24-hour windows: every identifier and Idempotency-Key seen so far is forgotten, so
   * resending an event counts it again. Recorded events stay counted.
   */
  expireIdentifiers(): void;
  /** Make every meter event session token expire (next stream call gets 401 temporary_session_expired). */
  expireMeterEventSessions(): void;
  sendWebhook(
    type: string,
    object: Record<string, unknown>,
    opts?: WebhookOptions,
  ): Promise<{ status: number; event: Record<string, unknown> }>;
  buildEvent(type: string, object: Record<string, unknown>, opts?: WebhookOptions): BuiltEvent;
  /**
   * Pays an open Checkout Session as a user would in the browser (see CompleteCheckoutOptions):
   * resolves to the `checkout.session.completed` delivery; a declined card rejects with the 402.
   */
  completeCheckoutSession(id: string, opts?: CompleteCheckoutOptions): Promise<WebhookDelivery>;
  /** Delivers an event built earlier again (same id and payload, signed now), as Stripe's retries do. */
  resendEvent(id: string, opts?: { url?: string }): Promise<WebhookDelivery>;
  /** Every event built so far (sent, emitted by an API call, or only built), oldest first. */
  events(type?: string): Array<Record<string, unknown>>;
  /** Makes the customer's saved cards decline every later charge (or succeed again with false);
   * returns how many cards changed. */
  setCardFailing(customer: string, failing?: boolean): number;
  close(): Promise<void>;
}
