import type { Ctx, Route } from "./state.js";
import { ApiError, invalid, missingParam } from "./api-error.js";
import { acceptMeterEvent, DUPLICATE_IDENTIFIER, type MeterEventInput } from "./meter-events.js";
import { optObj, optStr, rejectUnknown, reqStr } from "./params.js";
import { isObj, newId, type Obj, type Params } from "./util.js";

/** Stripe's meter event sessions last 15 minutes. */
const SESSION_TTL_S = 15 * 60;
/** Most events one stream request may carry. */
const MAX_EVENTS = 100;

const iso = (s: number): string => new Date(s * 1000).toISOString();

function v2Timestamp(p: Params): number | undefined {
  const t = optStr(p, "timestamp");
  if (t === undefined) return undefined;
  const ms = Date.parse(t);
  if (Number.isNaN(ms)) throw invalid(`Invalid timestamp: ${t}`, "timestamp");
  return Math.floor(ms / 1000);
}

function v2Input(p: Params): MeterEventInput {
  rejectUnknown(p, ["event_name", "payload", "identifier", "timestamp"]);
  const payload = optObj(p, "payload");
  if (!payload) throw missingParam("payload");
  return {
    event_name: reqStr(p, "event_name"),
    payload,
    identifier: optStr(p, "identifier"),
    timestamp: v2Timestamp(p),
  };
}

/** `POST /v2/billing/meter_event_session` (secret key): a token the stream accepts for 15 minutes. */
function v2Session(ctx: Ctx): Obj {
  const now = ctx.state.now();
  const token = newId("mes_tok", 32);
  ctx.state.sessions.set(token, now + SESSION_TTL_S);
  return {
    id: newId("mes"),
    object: "v2.billing.meter_event_session",
    authentication_token: token,
    created: iso(now),
    expires_at: iso(now + SESSION_TTL_S),
    livemode: false,
  };
}

/**
 * `POST /v2/billing/meter_event_stream` (session token): up to 100 events, validated after the
 * answer as in Stripe, so a bad event becomes an error report, never a failed request. Identifiers
 * are deduplicated with v1 meter events: a resent one is dropped silently.
 */
function v2Stream(ctx: Ctx): Obj {
  const events = ctx.params.events;
  if (!Array.isArray(events) || events.length === 0) throw missingParam("events");
  if (events.length > MAX_EVENTS) throw invalid(`events must contain at most ${MAX_EVENTS} items.`, "events");
  for (const raw of events) {
    let input: MeterEventInput | undefined;
    try {
      if (!isObj(raw)) throw invalid("Invalid event", "events");
      input = v2Input(raw);
      acceptMeterEvent(ctx.state, input);
    } catch (err) {
      if (!(err instanceof ApiError)) throw err;
      if (err.message.startsWith(DUPLICATE_IDENTIFIER)) continue;
      const payload = input?.payload;
      ctx.state.errorReports.push({
        code:
          err.extra.code === "resource_missing" ? "meter_event_customer_not_found" : "invalid_meter_event",
        message: err.message,
        event_name: input?.event_name,
        identifier: input?.identifier,
        customer: typeof payload?.stripe_customer_id === "string" ? payload.stripe_customer_id : undefined,
      });
    }
  }
  return {};
}

export const meterEventStreamRoutes: Route[] = [
  { method: "POST", template: "/v2/billing/meter_event_session", handler: v2Session },
  { method: "POST", template: "/v2/billing/meter_event_stream", handler: v2Stream, auth: "session" },
];
