import Stripe from "stripe";
import type { Config } from "../config.js";

/**
 * The official Stripe client. `STRIPE_API_BASE` (e.g. the local emulator) is split into the SDK's
 * own host/port/protocol settings; without a secret key the emulator's test key is used.
 */
export function createStripeClient(config: Pick<Config, "stripeSecretKey" | "stripeApiBase">): Stripe {
  const base = config.stripeApiBase ? new URL(config.stripeApiBase) : undefined;
  const protocol = base?.protocol === "http:" ? "http" : "https";
  return new Stripe(config.stripeSecretKey ?? "sk_test_meterline_emulator", {
    ...(base
      ? { host: base.hostname, port: Number(base.port || (protocol === "http" ? 80 : 443)), protocol }
      : {}),
  });
}
