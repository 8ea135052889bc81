import { Worker } from "bullmq";
import type { Deps } from "../src/deps.js";
import { QUEUE, queuePrefix } from "../src/queues.js";
import { createWorkerRedis } from "../src/redis.js";
import { createChatCompletionProcessor } from "./chat-completion.js";

export interface Workers {
  workers: Worker[];
  close(): Promise<void>;
}

/** Starts every queue processor of the worker process. */
export function startWorkers(deps: Deps): Workers {
  const { config, logger } = deps;
  const connection = createWorkerRedis(deps.redisUrl);
  connection.on("error", () => {});

  const chat = new Worker(QUEUE.chat, createChatCompletionProcessor(deps), {
    connection,
    prefix: queuePrefix(config.queuePrefix, QUEUE.chat),
    concurrency: config.chat.concurrency,
    lockDuration: config.worker.lockMs,
    stalledInterval: config.worker.stalledIntervalMs,
  });

  const workers = [chat];
  for (const worker of workers) {
    worker.on("error", (err) => logger.error({ err, queue: worker.name }, "worker error"));
    worker.on("failed", (job, err) => {
      if (!job) return;
      const final = job.finishedOn !== undefined;
      logger[final ? "error" : "warn"](
        { queue: worker.name, jobId: job.id, attemptsMade: job.attemptsMade, err: err.message },
        final ? "job failed for good" : "job failed, will retry",
      );
    });
  }

  return {
    workers,
    async close() {
      await Promise.all(workers.map((w) => w.close()));
      connection.disconnect();
    },
  };
}
