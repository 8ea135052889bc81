import { ApiError, invalid } from "./api-error.js";
import type { Reply } from "./http.js";
import type { MeterConcurrency } from "./meter-concurrency.js";
import type { State } from "./state.js";
import type { StripeEmulator } from "./types.js";
import { isObj } from "./util.js";

type Emulator = Pick<StripeEmulator, "meterEvents" | "sendWebhook" | "completeCheckoutSession">;

const CHECKOUT = /^\/_emulator\/checkout_sessions\/([^/]+)(\/complete)?$/;

/**
 * The control routes a newcomer uses under `npm start` (README): see usage arrive, send a signed
 * webhook event to walk a subscription through its life, and open or pay a Checkout Session (its
 * `url` points here).
 */
export function controlHandler(
  state: State,
  concurrency: MeterConcurrency,
  emulator: Emulator,
): (method: string, path: string, raw: string) => Promise<Reply> {
  return async (method, path, raw) => {
    if (method === "GET" && path === "/_emulator/meter_events") {
      const body = {
        object: "list",
        data: emulator.meterEvents(),
        concurrency_violations: concurrency.violations,
        max_concurrent_per_customer_meter: concurrency.maxConcurrent,
        error_reports: state.errorReports,
      };
      return { status: 200, body, headers: {} };
    }
    if (method === "POST" && path === "/_emulator/webhooks") return sendWebhookFrom(emulator, raw);
    const checkout = CHECKOUT.exec(path);
    const id = decodeURIComponent(checkout?.[1] ?? "");
    if (checkout && method === "GET" && !checkout[2]) {
      const session = state.find("checkout.session", id, "checkout.session");
      const body = { session, pay: `POST ${state.baseUrl}${path}/complete {"card":"pm_card_visa"}` };
      return { status: 200, body, headers: {} };
    }
    if (checkout && method === "POST" && checkout[2]) {
      const card = parseJson(raw === "" ? "{}" : raw, "Expected a JSON body {card?}.").card;
      if (card !== undefined && typeof card !== "string") throw invalid("card must be a test token.");
      return { status: 200, body: await emulator.completeCheckoutSession(id, { card }), headers: {} };
    }
    throw new ApiError(
      404,
      "invalid_request_error",
      `Unrecognized emulator control URL (${method}: ${path}).`,
    );
  };
}

function parseJson(raw: string, message: string): Record<string, unknown> {
  try {
    const parsed: unknown = JSON.parse(raw);
    if (isObj(parsed)) return parsed;
  } catch {
    // answered below
  }
  throw invalid(message);
}

async function sendWebhookFrom(emulator: Emulator, raw: string): Promise<Reply> {
  const input = parseJson(raw, "Expected a JSON body {type, object}.");
  const { type, object, previous_attributes: previous } = input;
  if (typeof type !== "string" || !isObj(object)) throw invalid("Expected {type, object}.");
  try {
    const delivery = await emulator.sendWebhook(type, object, {
      previousAttributes: isObj(previous) ? previous : undefined,
    });
    return { status: 200, body: delivery, headers: {} };
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    return {
      status: 502,
      body: { error: { type: "api_error", message: `Delivery failed: ${message}` } },
      headers: {},
    };
  }
}
