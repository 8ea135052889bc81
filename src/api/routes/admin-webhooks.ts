import { Router } from "express";
import { z } from "zod";
import type { Deps } from "../../deps.js";
import { createEndpoint, endpointInputSchema, listEndpoints } from "../../notifications/endpoints.js";
import { DELIVERY_STATUSES, listDeliveries } from "../../notifications/deliveries.js";
import { jsonBody, parseInput } from "../input.js";

const deliveriesQuery = z.object({
  endpoint: z.string().min(1).optional(),
  event: z.string().min(1).optional(),
  status: z.enum(DELIVERY_STATUSES).optional(),
  limit: z.coerce.number().int().min(1).max(1_000).default(100),
});

/** Outgoing webhook endpoints and their delivery log, under the authenticated /admin. */
export function adminWebhookRoutes(deps: Pick<Deps, "db" | "logger">): Router {
  const router = Router();

  // The answer holds the signing secret: the only time it is shown.
  router.post("/webhook-endpoints", async (req, res) => {
    const input = parseInput(jsonBody(endpointInputSchema), req.body);
    const endpoint = await createEndpoint(deps.db, input);
    deps.logger.info({ endpointId: endpoint.id, events: endpoint.events }, "webhook endpoint created");
    res.status(201).json({ object: "webhook_endpoint", ...endpoint });
  });

  router.get("/webhook-endpoints", async (_req, res) => {
    res.json({ object: "list", data: await listEndpoints(deps.db) });
  });

  router.get("/webhook-deliveries", async (req, res) => {
    const { endpoint, event, status, limit } = parseInput(deliveriesQuery, req.query);
    const data = await listDeliveries(deps.db, { endpointId: endpoint, eventId: event, status, limit });
    res.json({ object: "list", data });
  });

  return router;
}
