import { z } from "zod";
import {
  createEndpoint,
  endpointExists,
  endpointInputSchema,
  listEndpoints,
} from "../notifications/endpoints.js";
import { DELIVERY_STATUSES, listDeliveries, type DeliveryStatus } from "../notifications/deliveries.js";
import { publishEvent, TEST_EVENT_TYPE } from "../notifications/publish.js";
import { NotFoundError, UsageError } from "../errors.js";
import { optionalFlag, requireFlag, type CliContext } from "./context.js";

/** webhooks:add --url <url> [--events a,b]: prints the signing secret, once. */
export async function webhooksAdd(ctx: CliContext): Promise<void> {
  const events = optionalFlag(ctx, "events")
    ?.split(",")
    .map((e) => e.trim())
    .filter(Boolean);
  const parsed = endpointInputSchema.safeParse({ url: requireFlag(ctx, "url"), events });
  if (!parsed.success) throw new UsageError(parsed.error.issues[0]!.message);
  const endpoint = await createEndpoint(ctx.db(), parsed.data);
  ctx.print(
    `created webhook endpoint ${endpoint.id} for ${endpoint.url} (${endpoint.events?.join(",") ?? "all events"})\n` +
      `signing secret (shown once, give it to the receiver now):\n${endpoint.secret}`,
    endpoint,
  );
}

export async function webhooksList(ctx: CliContext): Promise<void> {
  const endpoints = await listEndpoints(ctx.db());
  ctx.print(
    endpoints.length
      ? endpoints
          .map(
            (e) =>
              `${e.id}\t${e.enabled ? "enabled" : "disabled"}\t${e.url}\t${e.events?.join(",") ?? "all events"}`,
          )
          .join("\n")
      : "no webhook endpoints",
    endpoints,
  );
}

/** webhooks:test [--endpoint <id>]: publishes a `webhook.test` event (to every enabled endpoint). */
export async function webhooksTest(ctx: CliContext): Promise<void> {
  const endpointId = optionalFlag(ctx, "endpoint");
  const deps = ctx.deps();
  if (endpointId && !(await endpointExists(deps.db, endpointId)))
    throw new NotFoundError(`no webhook endpoint ${endpointId}`);
  const event = await publishEvent(deps, {
    type: TEST_EVENT_TYPE,
    data: { message: "a test event from webhooks:test" },
    endpointIds: endpointId ? [endpointId] : undefined,
  });
  ctx.print(
    `published ${event.id} (${TEST_EVENT_TYPE}): ${event.deliveryIds.length} deliveries; ` +
      "follow them with webhooks:deliveries",
    { eventId: event.id, deliveries: event.deliveryIds },
  );
}

const statusFlag = z.enum(DELIVERY_STATUSES).optional();

/** webhooks:deliveries [--endpoint <id>] [--status pending|delivered|failed]: the delivery log. */
export async function webhooksDeliveries(ctx: CliContext): Promise<void> {
  const status = statusFlag.safeParse(optionalFlag(ctx, "status"));
  if (!status.success) throw new UsageError(`--status is one of ${DELIVERY_STATUSES.join(", ")}`);
  const deliveries = await listDeliveries(ctx.db(), {
    endpointId: optionalFlag(ctx, "endpoint"),
    status: status.data as DeliveryStatus | undefined,
    limit: 1_000,
  });
  ctx.print(
    deliveries.length
      ? deliveries
          .map(
            (d) =>
              `${d.id}\t${d.eventId}\t${d.eventType}\t${d.endpointId}\t${d.status}\t${d.attempts} attempts` +
              `\t${d.lastHttpStatus ?? "-"}\t${d.lastError ?? ""}`,
          )
          .join("\n")
      : "no webhook deliveries",
    deliveries,
  );
}
