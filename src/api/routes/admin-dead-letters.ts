import { Router } from "express";
import { z } from "zod";
import type { Deps } from "../../deps.js";
import { listDeadLetters } from "../../queues/dead-letters.js";
import { redriveDeadLetter } from "../../queues/redrive.js";
import { badRequest, notFound } from "../../errors.js";
import { parseInput, positiveIdParams } from "../input.js";

type AdminDeps = Pick<Deps, "db" | "queues" | "logger">;

const listQuery = z.object({
  queue: z.string().min(1).optional(),
  status: z.enum(["open", "resolved", "all"]).default("open"),
  limit: z.coerce.number().int().min(1).max(1_000).default(100),
});
const redriveAllQuery = z.object({ queue: z.string().min(1).optional() });

const letterParams = positiveIdParams("Dead letter ids are positive integers.");

/** The dead-letter admin API, under /admin (the caller puts admin auth in front). */
export function adminDeadLetterRoutes(deps: AdminDeps): Router {
  const router = Router();
  const queues = deps.queues.byName;

  router.get("/dead-letters", async (req, res) => {
    const filter = parseInput(listQuery, req.query);
    res.json({ object: "list", data: await listDeadLetters(deps.db, filter) });
  });

  // Redrive every open dead letter, or only one queue's. Registered before /:id so "redrive" is not an id.
  router.post("/dead-letters/redrive", async (req, res) => {
    const { queue } = parseInput(redriveAllQuery, req.query);
    if (queue && !queues(queue)) throw badRequest(`Unknown queue "${queue}".`, "unknown_queue", "queue");
    const letters = await listDeadLetters(deps.db, { queue, status: "open", limit: 10_000 });
    const data = [];
    for (const letter of letters) {
      data.push({ id: letter.id, outcome: await redriveDeadLetter(deps.db, queues, letter.id) });
    }
    deps.logger.info({ queue, count: data.length }, "dead letters redriven");
    res.json({ object: "list", data });
  });

  router.post("/dead-letters/:id/redrive", async (req, res) => {
    const { id } = parseInput(letterParams, req.params);
    const outcome = await redriveDeadLetter(deps.db, queues, id);
    if (outcome === "not-found") throw notFound(`No dead letter ${id}.`);
    deps.logger.info({ id, outcome }, "dead letter redriven");
    res.json({ id, outcome });
  });

  return router;
}
