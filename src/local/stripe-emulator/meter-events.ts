import { randomUUID } from "node:crypto";
import type { Ctx, Route, State, StoredMeterEvent } from "./state.js";
import { ApiError, invalid, missingParam, noSuch } from "./api-error.js";
import { optInt, optObj, optStr, rejectUnknown, reqStr } from "./params.js";
import { isObj, type Obj, type Params } from "./util.js";

const MAX_PAST_S = 35 * 86_400;
const MAX_FUTURE_S = 5 * 60;

function mappingKeys(
  state: State,
  eventName: string,
): { customerKey: string; valueKey: string; count: boolean } {
  const meter = state.activeMeterFor(eventName);
  const cm = isObj(meter?.customer_mapping) ? meter.customer_mapping : {};
  const vs = isObj(meter?.value_settings) ? meter.value_settings : {};
  const agg = isObj(meter?.default_aggregation) ? meter.default_aggregation : {};
  return {
    customerKey: typeof cm.event_payload_key === "string" ? cm.event_payload_key : "stripe_customer_id",
    valueKey: typeof vs.event_payload_key === "string" ? vs.event_payload_key : "value",
    count: agg.formula === "count",
  };
}

/** "customer\0event_name" of a meter event request, for the one-call-at-a-time rule. */
export function concurrencyKey(state: State, p: Params): string | undefined {
  const eventName = p.event_name;
  const payload = p.payload;
  if (typeof eventName !== "string" || !isObj(payload)) return undefined;
  const customer = payload[mappingKeys(state, eventName).customerKey];
  return typeof customer === "string" && customer !== "" ? `${customer}\u0000${eventName}` : undefined;
}

export interface MeterEventInput {
  event_name: string;
  payload: Obj;
  identifier?: string;
  timestamp?: number;
}

/** The message of Stripe's 400 for an identifier it has already recorded. */
export const DUPLICATE_IDENTIFIER = "An event already exists with identifier";

/**
 * Validates and records one meter event. Deviation from Stripe: Stripe checks the customer
 * asynchronously (an error report `meter_event_customer_not_found` arrives later); the emulator
 * answers 400 resource_missing synchronously so a permanent 4xx can be tested.
 */
export function acceptMeterEvent(state: State, input: MeterEventInput): StoredMeterEvent {
  const { event_name: eventName, payload } = input;
  if (eventName.length > 100) throw invalid("event_name must be at most 100 characters.", "event_name");
  const keys = mappingKeys(state, eventName);
  const customer = optStr(payload, keys.customerKey, `payload[${keys.customerKey}]`);
  if (customer === undefined || customer === "") throw missingParam(`payload[${keys.customerKey}]`);
  if (!state.customerExists(customer)) {
    throw noSuch("customer", customer, `payload[${keys.customerKey}]`, 400);
  }
  const valueParam = `payload[${keys.valueKey}]`;
  let rawValue = optStr(payload, keys.valueKey, valueParam);
  if (rawValue === undefined && keys.count) rawValue = "1";
  if (rawValue === undefined || rawValue === "") throw missingParam(valueParam);
  if (!/^\d+$/.test(rawValue) || !Number.isSafeInteger(Number(rawValue))) {
    throw invalid(`Invalid ${valueParam}: must be a non-negative integer, got '${rawValue}'.`, valueParam);
  }
  const now = state.now();
  const timestamp = input.timestamp ?? now;
  if (timestamp < now - MAX_PAST_S || timestamp > now + MAX_FUTURE_S) {
    throw invalid(
      `Timestamp ${timestamp} is invalid: it must be within the past 35 days and no more than 5 minutes in the future.`,
      "timestamp",
      "timestamp_out_of_range",
    );
  }
  const identifier = input.identifier ?? randomUUID();
  if (identifier.length > 100) throw invalid("identifier must be at most 100 characters.", "identifier");
  if (state.meterEvents.has(identifier)) {
    throw new ApiError(400, "invalid_request_error", `${DUPLICATE_IDENTIFIER} ${identifier}.`, {
      param: "identifier",
      headers: { "stripe-should-retry": "false" },
    });
  }
  const stringPayload: Record<string, string> = {};
  for (const [k, v] of Object.entries(payload)) stringPayload[k] = String(v);
  const record: StoredMeterEvent = {
    identifier,
    event_name: eventName,
    customer,
    value: Number(rawValue),
    timestamp,
    created: now,
    payload: stringPayload,
  };
  state.meterEvents.set(identifier, record);
  return record;
}

function v1MeterEvent(ctx: Ctx): Obj {
  const p = ctx.params;
  rejectUnknown(p, ["event_name", "payload", "identifier", "timestamp"]);
  const eventName = reqStr(p, "event_name");
  const payload = optObj(p, "payload");
  if (!payload) throw missingParam("payload");
  const e = acceptMeterEvent(ctx.state, {
    event_name: eventName,
    payload,
    identifier: optStr(p, "identifier"),
    timestamp: optInt(p, "timestamp"),
  });
  return {
    object: "billing.meter_event",
    created: e.created,
    event_name: e.event_name,
    identifier: e.identifier,
    livemode: false,
    payload: e.payload,
    timestamp: e.timestamp,
  };
}

export const meterEventRoutes: Route[] = [
  { method: "POST", template: "/v1/billing/meter_events", handler: v1MeterEvent, meterConcurrency: true },
];
