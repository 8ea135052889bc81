/**
 * Local Stripe emulator: a real HTTP server that the official `stripe` SDK talks to with
 * `new Stripe(key, { host: "127.0.0.1", port, protocol: "http" })`. Implementation lives in
 * ./stripe-emulator/; this file is the public entry.
 */
export { startStripeEmulator } from "./stripe-emulator/server.js";
export { METER_CONCURRENCY_REASON } from "./stripe-emulator/meter-concurrency.js";
export {
  subscriptionObject,
  invoiceObject,
  type SubscriptionObjectParams,
  type InvoiceObjectParams,
} from "./stripe-emulator/objects.js";
export { parseForm } from "./stripe-emulator/form.js";
export type {
  StripeFaults,
  FailStatus,
  FailNextOptions,
  StripeEmulatorOptions,
  MeterEventRecord,
  MeterErrorReport,
  WebhookOptions,
  BuiltEvent,
  WebhookDelivery,
  CompleteCheckoutOptions,
  StripeEmulator,
} from "./stripe-emulator/types.js";
