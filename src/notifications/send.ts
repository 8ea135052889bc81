import { SIGNATURE_HEADER, signPayload } from "./signature.js";
import type { DeliveryToSend } from "./deliveries.js";

/** What one POST came to: an HTTP status, or no answer at all (refused, reset, timed out). */
export type SendResult =
  { ok: true; httpStatus: number } | { ok: false; httpStatus: number | null; error: string };

/**
 * POSTs the event's body, signed now, to the endpoint. 2xx is delivered; any other status
 * (redirects are not followed) or no answer within `timeoutMs` is not. The error text names the
 * status or the network failure only: never the URL (it may carry credentials) nor the secret.
 */
export async function sendDelivery(
  delivery: Pick<DeliveryToSend, "url" | "secret" | "body" | "id">,
  { timeoutMs, signal }: { timeoutMs: number; signal?: AbortSignal },
): Promise<SendResult> {
  const timestamp = Math.floor(Date.now() / 1000);
  const timeout = AbortSignal.timeout(timeoutMs);
  try {
    const response = await fetch(delivery.url, {
      method: "POST",
      redirect: "manual",
      signal: signal ? AbortSignal.any([timeout, signal]) : timeout,
      headers: {
        "content-type": "application/json",
        "user-agent": "meterline-webhooks/1",
        [SIGNATURE_HEADER]: signPayload(delivery.secret, timestamp, delivery.body),
        "Meterline-Delivery": delivery.id,
      },
      body: delivery.body,
    });
    // The answer's body is not used: read and drop it so the connection can be reused.
    await response.body?.cancel().catch(() => {});
    if (response.status >= 200 && response.status < 300) return { ok: true, httpStatus: response.status };
    return { ok: false, httpStatus: response.status, error: `endpoint answered HTTP ${response.status}` };
  } catch (err) {
    if (timeout.aborted) return { ok: false, httpStatus: null, error: `no answer within ${timeoutMs} ms` };
    const cause = (err as { cause?: { code?: string } }).cause;
    return { ok: false, httpStatus: null, error: `network error: ${cause?.code ?? (err as Error).name}` };
  }
}
