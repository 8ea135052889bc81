import type { Logger } from "../../platform/logger.js";
import {
  createReaderRedis,
  reconnectQuietly,
  serverOf,
  type RedisClient,
  type RedisTls,
} from "../../platform/redis.js";

export type StreamEntries = Array<[id: string, fields: string[]]>;

export interface StreamSubscription {
  /**
   * The entries that arrived since the last read, or null when none came within `ms`. Rejects once
   * when the shared read failed (Redis unreachable): the caller gives up this stream.
   */
  read(ms: number): Promise<StreamEntries | null>;
  close(): void;
}

export interface StreamReader {
  /** Follows one Redis stream from after `fromId` ("0": from its start). */
  subscribe(key: string, fromId?: string): StreamSubscription;
  close(): void;
}

type Subscription = {
  lastId: string;
  buffer: StreamEntries;
  failure: unknown;
  waiter: ((entries: StreamEntries | null, err?: unknown) => void) | undefined;
};

// The block only bounds how late a new stream joins when a wake-up raced the read; a wake-up
// (CLIENT UNBLOCK from the control connection) re-issues the read at once otherwise.
const BLOCK_MS = 1_000;
const COUNT = 100;
const RETRY_MAX_MS = 1_000;

/**
 * One blocking XREAD loop per web process for every relayed stream: `XREAD BLOCK … STREAMS k1 k2 …
 * id1 id2 …` on a single connection, dispatching entries to each request's subscription, instead of
 * one connection per open stream. All keys must be in one Redis Cluster slot for a multi-key XREAD:
 * every stream key carries the chat queue's hash tag `{<prefix>-chat}` (src/chat/stream/protocol.ts).
 */
export function createStreamReader(
  url: string,
  deps: { control: RedisClient; logger: Logger; tls?: RedisTls },
): StreamReader {
  // By key: a reply is dispatched without walking every open stream.
  const subscriptions = new Map<string, Set<Subscription>>();
  let connection: RedisClient | undefined;
  // undefined: not asked yet on this connection; null: CLIENT is not allowed (no wake-ups then).
  let readerId: number | null | undefined;
  let running = false;
  let blocked = false;
  let waking = false;
  let closed = false;

  const reader = () => {
    if (connection) return connection;
    connection = createReaderRedis(url, deps.tls);
    // Errors surface on the read that hit them; the event itself is noise.
    reconnectQuietly(connection);
    // A reconnected socket is a new client with a new id.
    connection.on("ready", () => (readerId = undefined));
    return connection;
  };

  // On a cluster CLIENT ID / UNBLOCK go to the master of the streams' slot (every stream key shares
  // one hash tag), where the read blocks. An UNBLOCK that finds no such client (the reader's
  // connection moved with a failover) makes the next read ask its id again.
  const wake = (key: string) => {
    if (!blocked || waking || readerId == null) return;
    waking = true;
    const id = readerId;
    serverOf(deps.control, key)
      .then((server) => server.client("UNBLOCK", id))
      .then((unblocked) => {
        if (Number(unblocked) === 0 && readerId === id) readerId = undefined;
      })
      .catch(() => {}) // the read ends within BLOCK_MS anyway
      .finally(() => (waking = false));
  };

  const deliver = (sub: Subscription, entries: StreamEntries | null, err?: unknown) => {
    const waiter = sub.waiter;
    sub.waiter = undefined;
    waiter?.(entries, err);
  };

  const dispatch = (reply: Array<[string, StreamEntries]> | null) => {
    for (const [key, entries] of reply ?? []) {
      for (const sub of subscriptions.get(key) ?? []) {
        const fresh = entries.filter(([id]) => compareIds(id, sub.lastId) > 0);
        if (fresh.length === 0) continue;
        sub.lastId = fresh[fresh.length - 1]![0];
        sub.buffer.push(...fresh);
        if (sub.waiter) deliver(sub, sub.buffer.splice(0));
      }
    }
  };

  const loop = async () => {
    running = true;
    let failures = 0;
    while (subscriptions.size > 0 && !closed) {
      let reply: Array<[string, StreamEntries]> | null;
      try {
        const redis = reader();
        // A Redis whose ACL refuses CLIENT still works: a new stream then waits out the block.
        if (readerId === undefined)
          readerId = await serverOf(redis, subscriptions.keys().next().value!)
            .then((server) => server.client("ID"))
            .then(Number, () => null);
        // Read after that await: streams may have been subscribed or dropped meanwhile.
        if (subscriptions.size === 0) break;
        // Two readers of one stream (a replay beside the first client) share its read from the earlier id.
        const keys = [...subscriptions.keys()];
        const ids = keys.map((key) => {
          let from: string | undefined;
          for (const sub of subscriptions.get(key)!)
            if (from === undefined || compareIds(sub.lastId, from) < 0) from = sub.lastId;
          return from!;
        });
        blocked = true;
        const args = ["COUNT", COUNT, "BLOCK", BLOCK_MS, "STREAMS", ...keys, ...ids];
        reply = (await redis.call("XREAD", ...args)) as typeof reply;
        failures = 0;
      } catch (err) {
        if (closed) break;
        for (const set of subscriptions.values()) {
          for (const sub of set) {
            if (sub.waiter) deliver(sub, null, err);
            else sub.failure = err;
          }
        }
        failures++;
        if (failures === 1) deps.logger.warn({ err }, "the shared stream read failed; retrying");
        await new Promise((resolve) => setTimeout(resolve, Math.min(100 * 2 ** failures, RETRY_MAX_MS)));
        continue;
      } finally {
        blocked = false;
      }
      dispatch(reply);
    }
    running = false;
  };

  return {
    subscribe(key, fromId = "0") {
      const sub: Subscription = { lastId: fromId, buffer: [], failure: undefined, waiter: undefined };
      const ofKey = subscriptions.get(key) ?? new Set();
      subscriptions.set(key, ofKey.add(sub));
      if (!running) void loop();
      else wake(key);
      return {
        read(ms) {
          if (sub.buffer.length > 0) return Promise.resolve(sub.buffer.splice(0));
          if (sub.failure !== undefined) {
            const err = sub.failure;
            sub.failure = undefined;
            return Promise.reject(err as Error);
          }
          return new Promise((resolve, reject) => {
            const timer = setTimeout(() => deliver(sub, null), ms);
            sub.waiter = (entries, err) => {
              clearTimeout(timer);
              if (err !== undefined) reject(err as Error);
              else resolve(entries);
            };
          });
        },
        close() {
          ofKey.delete(sub);
          if (ofKey.size === 0 && subscriptions.get(key) === ofKey) subscriptions.delete(key);
          deliver(sub, null);
        },
      };
    },
    close() {
      closed = true;
      for (const set of subscriptions.values()) for (const sub of set) deliver(sub, null);
      subscriptions.clear();
      connection?.disconnect();
    },
  };
}

/** Orders two stream ids ("<ms>-<seq>", or "0"). */
export function compareIds(a: string, b: string): number {
  const [aMs = 0, aSeq = 0] = a.split("-").map(Number);
  const [bMs = 0, bSeq = 0] = b.split("-").map(Number);
  return aMs - bMs || aSeq - bSeq;
}
