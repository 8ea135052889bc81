import { errorReply, type Reply } from "./http.js";
import { ApiError } from "./api-error.js";

const MAX_ENTRIES = 200_000;

interface Entry {
  fingerprint: string;
  reply?: Reply;
  requestId?: string;
}

/**
 * Stripe-style idempotency: same key + same parameters replays the saved reply with
 * `Idempotent-Replayed: true`; other parameters → 400 idempotency_error; a key whose first request
 * is still running → 409. Only executed replies (successes and 402 declines) are saved, so a
 * refused request can be retried with its key. Oldest keys are forgotten beyond 200,000 entries.
 */
export class IdempotencyStore {
  private readonly entries = new Map<string, Entry>();

  /** Forgets every key, as Stripe does once a key is 24 hours old. */
  clear(): void {
    this.entries.clear();
  }

  async run(
    scope: string,
    key: string,
    fingerprint: string,
    requestId: string,
    execute: () => Promise<Reply>,
  ): Promise<Reply> {
    const existing = this.entries.get(scope);
    if (existing && !existing.reply) {
      throw new ApiError(
        409,
        "idempotency_error",
        `There is currently another in-progress request using this Idempotent Key (that probably means you ` +
          `submitted twice, and the other request is still going through): ${key}. Please try again later.`,
      );
    }
    if (existing?.reply) {
      if (existing.fingerprint !== fingerprint) {
        throw new ApiError(
          400,
          "idempotency_error",
          `Keys for idempotent requests can only be used with the same parameters they were first used with. ` +
            `Try using a key other than '${key}' if you meant to execute a different request.`,
        );
      }
      return {
        ...existing.reply,
        headers: {
          ...existing.reply.headers,
          "idempotent-replayed": "true",
          "original-request": existing.requestId ?? "",
        },
      };
    }
    this.entries.set(scope, { fingerprint });
    let reply: Reply;
    try {
      reply = await execute();
    } catch (err) {
      // A decline comes after the call began charging: Stripe saves it like a success, so a retry
      // with the same key answers the same decline and charges nothing.
      if (!(err instanceof ApiError && err.status === 402)) {
        this.entries.delete(scope);
        throw err;
      }
      reply = errorReply(err);
    }
    reply.headers["idempotency-key"] = key;
    this.entries.set(scope, { fingerprint, reply, requestId });
    if (this.entries.size > MAX_ENTRIES) {
      const oldest = this.entries.keys().next().value;
      if (oldest !== undefined) this.entries.delete(oldest);
    }
    return reply;
  }
}
