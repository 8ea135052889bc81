import { randomUUID } from "node:crypto";
import type { Db } from "../platform/db.js";
import type { Logger } from "../platform/logger.js";
import type { Queues } from "../queues/queues.js";
import { PermanentError } from "../errors.js";
import { enqueueDeliveries } from "./deliveries.js";

type Deps = { db: Db; logger: Logger; queues: Pick<Queues, "webhookDelivery"> };

/** Sent to every endpoint whatever its filter: it exists to check an endpoint works. */
export const TEST_EVENT_TYPE = "webhook.test";

export interface PublishedEvent {
  id: string;
  /** false when an event with this id existed: nothing new was written. */
  created: boolean;
  /** The event's deliveries still pending (enqueued again; their job ids make that harmless). */
  deliveryIds: string[];
}

const newEventId = () => `evt_${randomUUID().replaceAll("-", "")}`;
const newDeliveryId = () => `whd_${randomUUID().replaceAll("-", "")}`;

/** An event to publish; `endpointIds` narrows the endpoints (webhooks:test). */
export interface EventToPublish {
  id?: string;
  type: string;
  data: unknown;
  endpointIds?: readonly string[];
}

/**
 * Publishes one event: the event and one delivery per enabled endpoint whose filter matches are
 * written in one transaction, then a job per delivery is enqueued after the commit. Publishing an
 * id again writes nothing (one event, its deliveries as first written). If the enqueue fails (Redis
 * down) the deliveries stay pending in Postgres and the sweeper enqueues them: the publish has
 * happened once its transaction commits.
 */
export async function publishEvent(deps: Deps, event: EventToPublish): Promise<PublishedEvent> {
  const published = await deps.db.transaction((trx) => writeEvent(trx, event));
  await enqueuePublished(deps, published);
  return published;
}

/**
 * The write half of publishEvent, inside the caller's transaction: a caller that records something
 * else with the event (an alert's firing) commits both or neither, then calls enqueuePublished.
 */
export async function writeEvent(trx: Db, event: EventToPublish): Promise<PublishedEvent> {
  const id = event.id ?? newEventId();
  if (!/^[A-Za-z0-9_.-]{1,200}$/.test(id))
    throw new PermanentError(
      `invalid event id ${JSON.stringify(id)}`,
      400,
      "invalid_request_error",
      "invalid_event_id",
    );
  const inserted = await trx("webhook_events")
    .insert({ id, type: event.type, data: JSON.stringify(event.data ?? null) })
    .onConflict("id")
    .ignore()
    .returning("id");
  if (inserted.length === 0) return { id, created: false, deliveryIds: await pendingDeliveryIds(trx, id) };
  const endpoints = trx("webhook_endpoints").where({ enabled: true }).orderBy("created_at");
  if (event.type !== TEST_EVENT_TYPE)
    endpoints.where((q) => q.whereNull("event_types").orWhereRaw("? = ANY(event_types)", [event.type]));
  if (event.endpointIds) endpoints.whereIn("id", event.endpointIds);
  const endpointIds: string[] = await endpoints.pluck("id");
  const rows = endpointIds.map((endpointId) => ({
    id: newDeliveryId(),
    event_id: id,
    endpoint_id: endpointId,
  }));
  if (rows.length > 0) await trx("webhook_deliveries").insert(rows);
  return { id, created: true, deliveryIds: rows.map((r) => r.id) };
}

/** The event's deliveries not delivered yet, which enqueueing again is harmless for (job id = delivery id). */
export async function pendingDeliveryIds(db: Db, eventId: string): Promise<string[]> {
  return db("webhook_deliveries").where({ event_id: eventId, status: "pending" }).orderBy("id").pluck("id");
}

/**
 * The enqueue half of publishEvent, after the commit; false when it failed. A failure is logged,
 * not thrown: the deliveries are pending in Postgres and the sweeper enqueues them.
 */
export async function enqueuePublished(deps: Deps, published: PublishedEvent): Promise<boolean> {
  try {
    await enqueueDeliveries(deps.queues.webhookDelivery, published.deliveryIds);
    return true;
  } catch (err) {
    deps.logger.warn(
      { err: (err as Error).message, eventId: published.id, deliveries: published.deliveryIds.length },
      "webhook deliveries are written but not enqueued; the sweeper enqueues them",
    );
    return false;
  }
}
