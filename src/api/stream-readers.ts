import { createReaderRedis, type Redis, type RedisTls } from "../redis.js";

export interface StreamReaders {
  /** A connection of its own for one streaming request's XREAD BLOCK. */
  acquire(): Redis;
  /** Gives it back; a broken connection, or one beyond the idle cap, is closed instead. */
  release(connection: Redis): void;
  close(): void;
}

/** A small pool of dedicated blocking-read connections, so a stream's first token costs no connect. */
export function createStreamReaders(url: string, tls?: RedisTls, maxIdle = 16): StreamReaders {
  const idle: Redis[] = [];
  const all = new Set<Redis>();
  return {
    acquire() {
      const reused = idle.pop();
      if (reused) return reused;
      const connection = createReaderRedis(url, tls);
      // Errors surface on the command that hit them; the event itself is noise.
      connection.on("error", () => {});
      connection.once("end", () => all.delete(connection));
      all.add(connection);
      return connection;
    },
    release(connection) {
      if (connection.status === "ready" && idle.length < maxIdle) idle.push(connection);
      else connection.disconnect();
    },
    close() {
      idle.length = 0;
      for (const connection of all) connection.disconnect();
      all.clear();
    },
  };
}
