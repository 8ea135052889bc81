import type { Job } from "bullmq";
import type { Config } from "../src/config.js";
import { PermanentError, RetryableError } from "../src/errors.js";
import type { Db } from "../src/platform/db.js";
import type { Logger } from "../src/platform/logger.js";
import { isLastAttempt } from "../src/queues/failures.js";
import type { JobRun } from "../src/queues/processor.js";
import type { WebhookDeliveryJobData } from "../src/queues/queues.js";
import { deliveryForSending, markDelivered, recordDeliveryAttempt } from "../src/notifications/deliveries.js";
import { sendDelivery } from "../src/notifications/send.js";

type Deps = { db: Db; logger: Logger; config: Pick<Config, "webhooks"> };

/**
 * Capped exponential backoff with jitter for `webhook-delivery` retries: between half and all of
 * WEBHOOK_BACKOFF_MS doubled per attempt, up to WEBHOOK_MAX_BACKOFF_MS, so a receiver that comes
 * back is not hit by every retry at once.
 */
export function webhookBackoffStrategy(config: Pick<Config, "webhooks">) {
  return (attemptsMade: number): number => {
    const { backoffMs, maxBackoffMs } = config.webhooks;
    const ceiling = Math.min(maxBackoffMs, backoffMs * 2 ** Math.min(30, Math.max(0, attemptsMade - 1)));
    return Math.round(ceiling / 2 + (Math.random() * ceiling) / 2);
  };
}

/**
 * Sends one delivery. 2xx → `delivered`; anything else or no answer → retried with backoff, and
 * on the last attempt `failed` (the worker records the dead letter; dlq:redrive sends it again).
 * A delivery already delivered is not sent again. The log names the delivery and its endpoint,
 * never the URL or the secret.
 */
export function createWebhookDeliveryProcessor(deps: Deps) {
  return async ({ deliveryId }: WebhookDeliveryJobData, job: Job, { signal }: JobRun) => {
    const delivery = await deliveryForSending(deps.db, deliveryId);
    if (!delivery) throw new PermanentError(`no webhook delivery ${deliveryId}`, 404);
    if (delivery.status === "delivered") return { status: "delivered", already: true };
    const log = deps.logger.child({ deliveryId, endpointId: delivery.endpointId, jobId: job.id });
    if (!delivery.enabled) {
      const error = "the endpoint is disabled";
      await recordDeliveryAttempt(deps.db, deliveryId, { httpStatus: null, error, status: "failed" });
      throw new PermanentError(error, 409);
    }
    const result = await sendDelivery(delivery, { timeoutMs: deps.config.webhooks.timeoutMs, signal });
    if (result.ok) {
      await markDelivered(deps.db, deliveryId, result.httpStatus);
      log.info({ httpStatus: result.httpStatus, attempt: job.attemptsMade + 1 }, "webhook delivered");
      return { status: "delivered", httpStatus: result.httpStatus };
    }
    const status = isLastAttempt(job) ? "failed" : "pending";
    await recordDeliveryAttempt(deps.db, deliveryId, { ...result, status });
    throw new RetryableError(result.error);
  };
}
