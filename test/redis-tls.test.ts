import { describe, expect, it } from "vitest";
import { loadConfig } from "../src/config.js";
import { createDeps } from "../src/deps.js";
import { baseRedisOptions, redisTlsOf, redisTlsWarning, type Redis } from "../src/platform/redis.js";

// Nothing listens on port 1: the connection never gets anywhere, which is all this test needs.
const REDISS = "rediss://127.0.0.1:1";

describe("TLS to Redis", () => {
  it("verifies certificates by default, and skips it only with REDIS_TLS_REJECT_UNAUTHORIZED=false", () => {
    const verified = loadConfig({ REDIS_URL: REDISS });
    expect(verified.redisTlsRejectUnauthorized).toBe(true);
    expect(baseRedisOptions(REDISS, redisTlsOf(verified)).tls).toEqual({ rejectUnauthorized: true });
    expect(baseRedisOptions(REDISS).tls).toEqual({ rejectUnauthorized: true });
    expect(redisTlsWarning(verified)).toBeUndefined();

    const off = loadConfig({ REDIS_URL: REDISS, REDIS_TLS_REJECT_UNAUTHORIZED: "false" });
    expect(baseRedisOptions(REDISS, redisTlsOf(off)).tls).toEqual({ rejectUnauthorized: false });
    expect(redisTlsWarning(off)).toMatch(/REDIS_TLS_REJECT_UNAUTHORIZED=false.*not verified/);

    expect(baseRedisOptions("redis://127.0.0.1:1", redisTlsOf(off)).tls).toBeUndefined();
    expect(() => loadConfig({ REDIS_TLS_REJECT_UNAUTHORIZED: "maybe" })).toThrow(
      /REDIS_TLS_REJECT_UNAUTHORIZED/,
    );
  });

  it("reaches the connections the process opens", async () => {
    for (const [setting, expected] of [
      [undefined, true],
      ["false", false],
    ] as const) {
      const deps = createDeps(
        loadConfig({ REDIS_URL: REDISS, REDIS_TLS_REJECT_UNAUTHORIZED: setting, LOG_LEVEL: "silent" }),
      );
      expect((deps.redis as Redis).options.tls).toEqual({ rejectUnauthorized: expected });
      await deps.close();
    }
  });
});
