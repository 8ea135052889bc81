import type { EventEmitter } from "node:events";
import type { QueueEvents } from "bullmq";

export interface ChatOutcome {
  /** The job's return value; rejects when it fails or nothing arrives within the wait. */
  readonly finished: Promise<unknown>;
  /** Stops listening (the outcome is no longer wanted). */
  cancel(): void;
}

/**
 * Listens on the shared QueueEvents for the outcome of a chat job that this request is about to add.
 *
 * BullMQ's `job.waitUntilFinished` subscribes after the job exists and then asks Redis whether it
 * already finished: one more round trip on every synchronous chat. Subscribing before the add
 * cannot miss the outcome of a job the add creates, so that check is not needed. A job that already
 * existed is not awaited this way (its outcome may be in the past): use `waitUntilFinished` for it.
 */
export async function listenForChatOutcome(
  events: QueueEvents,
  jobId: string,
  waitMs: number,
): Promise<ChatOutcome> {
  // Events are read from the moment the consumer is listening: it must be before the add.
  await events.waitUntilReady();
  // QueueEvents also emits `completed:<job id>` and `failed:<job id>` (BullMQ's own
  // waitUntilFinished listens to them), but does not type them.
  const perJob = events as unknown as EventEmitter;
  let cancel = () => {};
  const finished = new Promise<unknown>((resolve, reject) => {
    const onCompleted = ({ returnvalue }: { returnvalue: unknown }) => {
      cancel();
      resolve(returnvalue);
    };
    const onFailed = ({ failedReason }: { failedReason: string }) => {
      cancel();
      reject(new Error(failedReason));
    };
    const timer = setTimeout(() => {
      cancel();
      reject(new Error(`no outcome for chat ${jobId} within ${waitMs} ms`));
    }, waitMs);
    cancel = () => {
      clearTimeout(timer);
      perJob.off(`completed:${jobId}`, onCompleted);
      perJob.off(`failed:${jobId}`, onFailed);
    };
    perJob.on(`completed:${jobId}`, onCompleted);
    perJob.on(`failed:${jobId}`, onFailed);
  });
  // The route answers every rejection by reading the job; none may go unhandled meanwhile.
  finished.catch(() => {});
  return { finished, cancel: () => cancel() };
}
