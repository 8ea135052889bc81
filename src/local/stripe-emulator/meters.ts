import type { Ctx, Route, StoredMeterEvent } from "./state.js";
import { invalid, missingParam } from "./api-error.js";
import { paginate } from "./paginate.js";
import { optInt, optObj, optStr, rejectUnknown, reqStr } from "./params.js";
import { isObj, newId, type Obj } from "./util.js";

// Billing meters and their event summaries (reconciliation reads).

function createMeter(ctx: Ctx): Obj {
  const p = ctx.params;
  rejectUnknown(p, [
    "display_name",
    "event_name",
    "default_aggregation",
    "customer_mapping",
    "value_settings",
    "event_time_window",
  ]);
  const displayName = reqStr(p, "display_name");
  const eventName = reqStr(p, "event_name");
  if (eventName.length > 100) throw invalid("event_name must be at most 100 characters.", "event_name");
  const agg = optObj(p, "default_aggregation");
  const formula = agg ? optStr(agg, "formula", "default_aggregation[formula]") : undefined;
  if (!formula) throw missingParam("default_aggregation[formula]");
  if (!["sum", "count", "last"].includes(formula)) {
    throw invalid(
      `Invalid default_aggregation[formula]: must be one of count, last, or sum`,
      "default_aggregation[formula]",
    );
  }
  const cm = optObj(p, "customer_mapping") ?? {};
  const vs = optObj(p, "value_settings") ?? {};
  const window = optStr(p, "event_time_window");
  if (window !== undefined && window !== "hour" && window !== "day") {
    throw invalid("Invalid event_time_window: must be one of day or hour", "event_time_window");
  }
  if (ctx.state.activeMeterFor(eventName)) {
    throw invalid(`An active meter with event_name '${eventName}' already exists.`, "event_name");
  }
  const now = ctx.state.now();
  return ctx.state.put({
    id: newId("mtr"),
    object: "billing.meter",
    created: now,
    customer_mapping: {
      event_payload_key: optStr(cm, "event_payload_key") ?? "stripe_customer_id",
      type: optStr(cm, "type") ?? "by_id",
    },
    default_aggregation: { formula },
    display_name: displayName,
    event_name: eventName,
    event_time_window: window ?? null,
    livemode: false,
    status: "active",
    status_transitions: { deactivated_at: null },
    updated: now,
    value_settings: { event_payload_key: optStr(vs, "event_payload_key") ?? "value" },
  });
}

function eventSummaries(ctx: Ctx): Obj {
  const meter = ctx.state.find("billing.meter", ctx.pathParams.id ?? "", "billing meter");
  const p = ctx.params;
  const customer = reqStr(p, "customer");
  const start = optInt(p, "start_time");
  const end = optInt(p, "end_time");
  if (start === undefined) throw missingParam("start_time");
  if (end === undefined) throw missingParam("end_time");
  if (start % 60 !== 0) throw invalid("start_time must be aligned with minute boundaries.", "start_time");
  if (end % 60 !== 0) throw invalid("end_time must be aligned with minute boundaries.", "end_time");
  if (end <= start) throw invalid("end_time must be after start_time.", "end_time");
  const grouping = optStr(p, "value_grouping_window");
  if (grouping !== undefined && grouping !== "hour" && grouping !== "day") {
    throw invalid("Invalid value_grouping_window: must be one of day or hour", "value_grouping_window");
  }
  const events = ctx.state
    .allMeterEvents()
    .filter((e) => e.customer === customer && e.event_name === meter.event_name);
  const formula = isObj(meter.default_aggregation) ? meter.default_aggregation.formula : "sum";
  const step = grouping === "hour" ? 3600 : grouping === "day" ? 86_400 : 0;
  const windows: Array<[number, number]> = [];
  if (step === 0) windows.push([start, end]);
  else {
    for (let s = start; s < end; s = Math.floor(s / step) * step + step) {
      windows.push([s, Math.min(end, Math.floor(s / step) * step + step)]);
    }
  }
  const meterId = String(meter.id);
  const summaries = windows.map(([ws, we]) => {
    const inWindow = events.filter((e) => e.timestamp >= ws && e.timestamp < we);
    let value = 0;
    if (formula === "count") value = inWindow.length;
    else if (formula === "last") {
      const last = inWindow.reduce<StoredMeterEvent | undefined>(
        (acc, e) => (acc === undefined || e.timestamp >= acc.timestamp ? e : acc),
        undefined,
      );
      value = last?.value ?? 0;
    } else value = inWindow.reduce((acc, e) => acc + e.value, 0);
    const id = `mtrusg_${Buffer.from(`${meterId}|${customer}|${ws}|${we}`).toString("base64url")}`;
    return {
      id,
      object: "billing.meter_event_summary",
      aggregated_value: value,
      end_time: we,
      livemode: false,
      meter: meterId,
      start_time: ws,
    };
  });
  return paginate(summaries.reverse(), p, `/v1/billing/meters/${meterId}/event_summaries`);
}

export const meterRoutes: Route[] = [
  { method: "POST", template: "/v1/billing/meters", handler: createMeter },
  {
    method: "GET",
    template: "/v1/billing/meters",
    handler: (ctx) => {
      const status = optStr(ctx.params, "status");
      const list = ctx.state.list("billing.meter", (m) => status === undefined || m.status === status);
      return paginate(list, ctx.params, "/v1/billing/meters");
    },
  },
  { method: "GET", template: "/v1/billing/meters/:id/event_summaries", handler: eventSummaries },
];
