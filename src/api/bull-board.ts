import { createBullBoard } from "@bull-board/api";
import { BullMQAdapter } from "@bull-board/api/bullMQAdapter";
import { ExpressAdapter } from "@bull-board/express";
import type { Router } from "express";
import type { Queue } from "bullmq";

/** Bull Board over every queue, linking back to the dashboard; mount it behind admin auth, never in front of it. */
export function bullBoardRouter(queues: Queue[], basePath = "/admin/queues"): Router {
  const serverAdapter = new ExpressAdapter();
  serverAdapter.setBasePath(basePath);
  createBullBoard({
    queues: queues.map((q) => new BullMQAdapter(q)),
    serverAdapter,
    options: { uiConfig: { miscLinks: [{ text: "Dashboard", url: "/admin" }] } },
  });
  return serverAdapter.getRouter() as Router;
}
