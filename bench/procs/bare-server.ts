// Baselines B1 and B2: the same Express 5 + JSON body parsing meterline uses, with nothing else
// (POST /bare) or with one BullMQ `queue.add` (POST /enqueue). Prints READY when listening.
import express from "express";
import { Queue } from "bullmq";
import { createProducerRedis } from "../../src/platform/redis.js";

const port = Number(process.env.PORT);
const redis = createProducerRedis(process.env.REDIS_URL ?? "redis://127.0.0.1:6379");
const queue = new Queue("baseline-add", {
  connection: redis,
  prefix: `{${process.env.QUEUE_PREFIX}-baseline-add}`,
  defaultJobOptions: { removeOnComplete: { age: 86_400, count: 100_000 } },
});
await queue.waitUntilReady();

const app = express();
app.disable("x-powered-by");
app.use(express.json());
app.post("/bare", (req, res) => {
  res.json({ id: "bare", model: req.body?.model ?? null });
});
app.post("/enqueue", async (req, res) => {
  const job = await queue.add("job", req.body);
  res.status(202).json({ id: job.id });
});
const server = app.listen(port, "127.0.0.1", () => console.log("READY"));
server.keepAliveTimeout = 65_000;

process.once("SIGTERM", async () => {
  server.close();
  server.closeAllConnections();
  await queue.close();
  redis.disconnect();
  process.exit(0);
});
