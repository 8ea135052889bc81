import type { Logger } from "../platform/logger.js";
import type { Worker } from "bullmq";

/**
 * Graceful stop of a worker process: stop taking jobs and let active ones finish; at
 * `cancelAfterMs` abort the ones still running, which hand themselves back to the wait list
 * (src/queues/requeue.ts) for another worker. Jobs that ignore the signal stall and are retried after
 * the lock expires. Nothing accepted is lost either way.
 */
export async function shutdownWorkers(
  workers: { workers: Worker[]; close(): Promise<void> },
  cancelAfterMs: number,
  logger: Logger,
): Promise<void> {
  const cancel = setTimeout(() => {
    logger.warn({ cancelAfterMs }, "shutdown deadline near: handing active jobs back to the queue");
    for (const worker of workers.workers) worker.cancelAllJobs("shutdown");
  }, cancelAfterMs);
  try {
    await workers.close();
  } finally {
    clearTimeout(cancel);
  }
}
