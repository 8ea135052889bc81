import { randomBytes } from "node:crypto";
import { afterAll, describe, expect, it } from "vitest";
import { Redis } from "ioredis";
import { compareIds, createStreamReader } from "../src/chat/stream/reader.js";
import { createLogger } from "../src/platform/logger.js";

const URL = "redis://127.0.0.1:6379";
const redis = new Redis(URL);
const logger = createLogger("silent", "test");
const tag = `{t${randomBytes(5).toString("hex")}-chat}`;
const keys: string[] = [];
const streamKey = () => {
  keys.push(`${tag}:stream:${keys.length}`);
  return keys[keys.length - 1]!;
};
afterAll(async () => {
  if (keys.length) await redis.del(...keys);
  redis.disconnect();
});

/** Reads a subscription until `n` entries came, or gives up after 20 empty reads. */
async function take(sub: { read(ms: number): Promise<Array<[string, string[]]> | null> }, n: number) {
  const got: Array<[string, string[]]> = [];
  for (let empty = 0; got.length < n && empty < 20;) {
    const entries = await sub.read(500);
    if (entries) got.push(...entries);
    else empty++;
  }
  return got.map(([, fields]) => fields[1]);
}

describe("the shared stream reader", () => {
  it("serves many streams and two readers of one stream from their own positions", async () => {
    const reader = createStreamReader(URL, { control: redis, logger });
    try {
      const [a, b] = [streamKey(), streamKey()];
      const first = await redis.xadd(a, "*", "t", "a0");
      const fromStart = reader.subscribe(a);
      const fromFirst = reader.subscribe(a, first!);
      const other = reader.subscribe(b);
      await redis.xadd(a, "*", "t", "a1");
      await redis.xadd(b, "*", "t", "b0");
      expect(await take(fromStart, 2)).toEqual(["a0", "a1"]);
      expect(await take(fromFirst, 1)).toEqual(["a1"]);
      expect(await take(other, 1)).toEqual(["b0"]);
      // A stream joined while the read blocks on the others is served too.
      const c = streamKey();
      await redis.xadd(c, "*", "t", "c0");
      expect(await take(reader.subscribe(c), 1)).toEqual(["c0"]);
      fromStart.close();
      await redis.xadd(a, "*", "t", "a2");
      expect(await take(fromFirst, 1)).toEqual(["a2"]);
    } finally {
      reader.close();
    }
  });

  it("fails a read when Redis is unreachable, so the relay can answer 503", async () => {
    const reader = createStreamReader("redis://127.0.0.1:1", { control: redis, logger });
    try {
      await expect(reader.subscribe(streamKey()).read(5_000)).rejects.toThrow();
    } finally {
      reader.close();
    }
  });

  it("orders stream ids by time, then sequence", () => {
    expect(compareIds("0", "1-0")).toBeLessThan(0);
    expect(compareIds("10-0", "9-5")).toBeGreaterThan(0);
    expect(compareIds("5-2", "5-10")).toBeLessThan(0);
    expect(compareIds("5-2", "5-2")).toBe(0);
  });
});
