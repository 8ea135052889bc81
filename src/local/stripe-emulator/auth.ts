import type { IncomingMessage } from "node:http";
import { bearerOf, mask } from "./http.js";
import type { Route, State } from "./state.js";
import { ApiError } from "./api-error.js";

/**
 * The key a request authenticates with: a meter event session token on session routes, else a
 * secret key (`apiKey` when set, any sk_test_/sk_live_ key otherwise). Throws Stripe's 401.
 */
export function authenticate(
  req: IncomingMessage,
  route: Route | undefined,
  state: State,
  apiKey: string | undefined,
): string {
  const key = bearerOf(req);
  if (route?.auth === "session") {
    const expires = key === undefined ? undefined : state.sessions.get(key);
    if (key !== undefined && expires !== undefined && expires <= state.now()) {
      throw new ApiError(401, "temporary_session_expired", "The meter event session has expired.", {
        code: "billing_meter_event_session_expired",
      });
    }
    if (key !== undefined && expires !== undefined) return key;
    throw new ApiError(401, "authentication_error", "Invalid or missing meter event session token.");
  }
  if (key === undefined) {
    throw new ApiError(
      401,
      "authentication_error",
      "You did not provide an API key. You need to provide your API key in the Authorization header, " +
        "using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY').",
    );
  }
  const ok = apiKey !== undefined ? key === apiKey : /^sk_(test|live)_\w+$/.test(key);
  if (!ok) throw new ApiError(401, "authentication_error", `Invalid API Key provided: ${mask(key)}`);
  return key;
}
