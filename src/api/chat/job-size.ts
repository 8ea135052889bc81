import type { Config } from "../../config.js";
import { HttpError } from "../../errors.js";

/**
 * Refuses a chat whose job would be larger than CHAT_JOB_MAX_BYTES, before anything is claimed, held
 * or enqueued. Redis runs `noeviction`: every job's payload stays in memory until the job is removed,
 * and a full Redis stops every write. The request is the job's only unbounded part (the rest is a few
 * ids), so it is what is measured. BODY_LIMIT bounds the HTTP body the parser reads; this bounds what
 * is kept.
 */
export function refuseOversizedJob(config: Pick<Config, "chatJobMaxBytes">, request: unknown): void {
  const bytes = Buffer.byteLength(JSON.stringify(request));
  if (bytes <= config.chatJobMaxBytes) return;
  throw new HttpError(
    413,
    `This request is ${bytes} bytes as a job, above the largest accepted (${config.chatJobMaxBytes} ` +
      "bytes); shorten the messages or the tools.",
    "invalid_request_error",
    "request_too_large",
  );
}
