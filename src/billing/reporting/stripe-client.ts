import Stripe from "stripe";
import type { Config } from "../../config.js";

export type StripeClient = Stripe;

/** `STRIPE_API_BASE` (e.g. http://127.0.0.1:12111) as the SDK's own host/port/protocol settings. */
export function stripeAddress(apiBase: string | undefined): {
  host?: string;
  port?: number;
  protocol?: "http" | "https";
} {
  if (!apiBase) return {};
  const url = new URL(apiBase);
  const protocol = url.protocol === "http:" ? "http" : "https";
  return {
    host: url.hostname.replace(/^\[(.*)\]$/, "$1"),
    port: url.port ? Number(url.port) : protocol === "http" ? 80 : 443,
    protocol,
  };
}

/** The official Stripe client, or undefined when no STRIPE_SECRET_KEY is configured. */
export function createStripeClient(config: Config): StripeClient | undefined {
  if (!config.stripeSecretKey) return undefined;
  return new Stripe(config.stripeSecretKey, {
    ...stripeAddress(config.stripeApiBase),
    timeout: config.stripe.timeoutMs,
    appInfo: { name: "meterline" },
  });
}
