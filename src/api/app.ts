import express, { type Express } from "express";
import type { WebDeps } from "../deps.js";
import { bullBoardRouter } from "./bull-board.js";
import { adminAuth, customerAuth } from "./middleware/auth.js";
import { errorHandler, notFoundHandler } from "./middleware/errors.js";
import { jsonDepthLimit } from "./middleware/json-depth.js";
import { rateLimit } from "./middleware/rate-limit.js";
import { requestLog } from "./middleware/request-log.js";
import { adminReportRoutes } from "./routes/admin-reports.js";
import { chatRoutes } from "./chat/route.js";
import { healthRoutes } from "./routes/health.js";
import { metricsRoutes } from "./routes/metrics.js";
import { usageRoutes } from "./routes/usage.js";
import { adminDeadLetterRoutes } from "./routes/admin-dead-letters.js";
import { adminCreditRoutes } from "./routes/admin-credits.js";
import { adminEndUserRoutes } from "./routes/admin-end-users.js";
import { stripeWebhookRoutes } from "./routes/stripe-webhooks.js";
import { adminWebhookRoutes } from "./routes/admin-webhooks.js";
import { adminAlertRoutes } from "./routes/admin-alerts.js";
import { adminAutoTopUpRoutes, creditRoutes } from "./routes/credits.js";
import { dashboardRoutes } from "./dashboard/routes.js";
import { adminPortalRoutes, portalRoutes } from "./portal/routes.js";

/** The HTTP API; listening is the caller's business (server.ts, npm start, tests). */
export function createApp(deps: WebDeps): Express {
  const app = express();
  app.disable("x-powered-by");
  // API answers are never revalidated by clients: hashing every body for an ETag is wasted work.
  app.set("etag", false);
  app.set("trust proxy", true);

  app.use(requestLog(deps));
  // The hot path first, so chat requests do not walk the health, metrics and admin routers.
  // The depth check runs before any route: hashing, validation and job serialization all recurse.
  const json = [express.json({ limit: deps.config.bodyLimit }), jsonDepthLimit()];
  app.use(
    "/v1",
    customerAuth(deps.db),
    rateLimit(deps),
    ...json,
    chatRoutes(deps),
    usageRoutes(deps),
    creditRoutes(deps),
  );
  app.use(healthRoutes(deps));
  // With METRICS_PORT set, metrics are served on that port instead (src/platform/metrics-server.ts).
  if (deps.config.adminToken && !deps.config.metricsPort)
    app.use(metricsRoutes({ metrics: deps.metrics, adminToken: deps.config.adminToken }));
  // Raw body for the signature check: mounted before (and apart from) the /v1 JSON parser.
  app.use(stripeWebhookRoutes(deps));
  // Opened by a signed link, not the admin token: mounted before (and apart from) /admin.
  app.use(portalRoutes(deps));

  if (deps.config.adminToken) {
    // Without a token the board is not served at all: an open Bull Board can delete jobs.
    app.use("/admin", adminAuth(deps.config.adminToken));
    app.use("/admin/queues", bullBoardRouter(deps.queues.all));
    app.use("/admin", adminReportRoutes(deps));
    app.use("/admin", adminDeadLetterRoutes(deps));
    app.use("/admin", ...json, adminCreditRoutes(deps));
    app.use("/admin", ...json, adminWebhookRoutes(deps));
    app.use("/admin", ...json, adminAlertRoutes(deps));
    app.use("/admin", ...json, adminAutoTopUpRoutes(deps));
    app.use("/admin", ...json, adminEndUserRoutes(deps));
    app.use("/admin", dashboardRoutes(deps));
    app.use("/admin", adminPortalRoutes(deps));
  }

  app.use(notFoundHandler);
  app.use(errorHandler(deps.logger));
  return app;
}
