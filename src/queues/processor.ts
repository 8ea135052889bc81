import { UnrecoverableError, type Job, type Processor } from "bullmq";
import { z } from "zod";
import { PermanentError } from "../errors.js";
import { JOB_SCHEMAS, type JobData, type QueueName } from "./queues.js";

/** What a processor gets besides its payload: the worker's lock token and its shutdown signal. */
export type JobRun = { token?: string; signal?: AbortSignal };

/** A queue's processor: it takes the payload already parsed with the queue's schema. */
export type JobProcessor<Q extends QueueName, R = unknown> = (
  data: JobData<Q>,
  job: Job<JobData<Q>>,
  run: JobRun,
) => Promise<R>;

/**
 * The one place where a job's errors are translated for BullMQ. A payload that fails its queue's
 * schema and a PermanentError fail the job for good at once (UnrecoverableError, with the original
 * as `cause`): no retry can fix them. Anything else is retried while attempts remain.
 */
export function wrapProcessor<Q extends QueueName>(queue: Q, process: JobProcessor<Q>): Processor {
  const schema = JOB_SCHEMAS[queue];
  return async (job: Job<JobData<Q>>, token?: string, signal?: AbortSignal) => {
    const parsed = schema.safeParse(job.data);
    if (!parsed.success)
      throw unrecoverable(`invalid ${queue} payload: ${z.prettifyError(parsed.error)}`, parsed.error);
    try {
      return await process(parsed.data as JobData<Q>, job, { token, signal });
    } catch (err) {
      throw err instanceof PermanentError ? unrecoverable(err.message, err) : err;
    }
  };
}

function unrecoverable(message: string, cause: unknown): UnrecoverableError {
  const error = new UnrecoverableError(message);
  error.cause = cause;
  return error;
}
