import type { Db } from "../platform/db.js";
import type { Queues } from "../queues/queues.js";

export const DELIVERY_STATUSES = ["pending", "delivered", "failed"] as const;
export type DeliveryStatus = (typeof DELIVERY_STATUSES)[number];

/** One row of the delivery log. */
export interface Delivery {
  id: string;
  eventId: string;
  eventType: string;
  endpointId: string;
  status: DeliveryStatus;
  attempts: number;
  lastHttpStatus: number | null;
  lastError: string | null;
  createdAt: Date;
  updatedAt: Date;
  deliveredAt: Date | null;
}

/** What one attempt needs: the endpoint, its secret and the event's body. Never logged whole. */
export interface DeliveryToSend {
  id: string;
  status: DeliveryStatus;
  endpointId: string;
  url: string;
  secret: string;
  enabled: boolean;
  /** The JSON body every attempt posts: `{id, type, created, data}`, the same bytes each time. */
  body: string;
}

export async function deliveryForSending(db: Db, id: string): Promise<DeliveryToSend | undefined> {
  const row = await db("webhook_deliveries as d")
    .join("webhook_events as e", "e.id", "d.event_id")
    .join("webhook_endpoints as w", "w.id", "d.endpoint_id")
    .where("d.id", id)
    .first(
      "d.id",
      "d.status",
      "d.endpoint_id",
      "w.url",
      "w.secret",
      "w.enabled",
      "e.id as event_id",
      "e.type",
      "e.data",
      "e.created_at",
    );
  if (!row) return undefined;
  const created = Math.floor((row.created_at as Date).getTime() / 1000);
  return {
    id: row.id,
    status: row.status,
    endpointId: row.endpoint_id,
    url: row.url,
    secret: row.secret,
    enabled: row.enabled,
    body: JSON.stringify({ id: row.event_id, type: row.type, created, data: row.data }),
  };
}

/** Records one attempt that did not deliver; `status` is "failed" once no attempt remains. */
export async function recordDeliveryAttempt(
  db: Db,
  id: string,
  outcome: { httpStatus: number | null; error: string; status: "pending" | "failed" },
): Promise<void> {
  await db("webhook_deliveries")
    .where({ id })
    .whereNot({ status: "delivered" })
    .update({
      status: outcome.status,
      attempts: db.raw("attempts + 1"),
      last_http_status: outcome.httpStatus,
      last_error: outcome.error,
      updated_at: db.fn.now(),
    });
}

export async function markDelivered(db: Db, id: string, httpStatus: number): Promise<void> {
  await db("webhook_deliveries")
    .where({ id })
    .whereNot({ status: "delivered" })
    .update({
      status: "delivered",
      attempts: db.raw("attempts + 1"),
      last_http_status: httpStatus,
      last_error: null,
      updated_at: db.fn.now(),
      delivered_at: db.fn.now(),
    });
}

/** Adds one job per delivery; a delivery whose job exists is not added twice (job id = delivery id). */
export async function enqueueDeliveries(
  queue: Pick<Queues["webhookDelivery"], "addBulk">,
  ids: readonly string[],
): Promise<void> {
  if (ids.length === 0) return;
  await queue.addBulk(ids.map((id) => ({ name: "deliver", data: { deliveryId: id }, opts: { jobId: id } })));
}

export async function listDeliveries(
  db: Db,
  filter: { endpointId?: string; status?: DeliveryStatus; eventId?: string; limit?: number } = {},
): Promise<Delivery[]> {
  const query = db("webhook_deliveries as d")
    .join("webhook_events as e", "e.id", "d.event_id")
    .orderBy([
      { column: "d.created_at", order: "desc" },
      { column: "d.id", order: "desc" },
    ])
    .limit(filter.limit ?? 100)
    .select(
      "d.id",
      "d.event_id as eventId",
      "e.type as eventType",
      "d.endpoint_id as endpointId",
      "d.status",
      "d.attempts",
      "d.last_http_status as lastHttpStatus",
      "d.last_error as lastError",
      "d.created_at as createdAt",
      "d.updated_at as updatedAt",
      "d.delivered_at as deliveredAt",
    );
  if (filter.endpointId) query.where("d.endpoint_id", filter.endpointId);
  if (filter.status) query.where("d.status", filter.status);
  if (filter.eventId) query.where("d.event_id", filter.eventId);
  return query;
}
