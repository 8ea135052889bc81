import { spawnSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { DEFAULT_DATABASE_URL, DEFAULT_REDIS_URL, loadConfig } from "../src/config.js";
import { ConfigError } from "../src/errors.js";

describe("configuration", () => {
  it("parses defaults and typed values", () => {
    const config = loadConfig({ PORT: "8080", CHAT_CONCURRENCY: "7", DATABASE_URL: "postgres://u@h:5432/d" });
    expect(config.port).toBe(8080);
    expect(config.chat.concurrency).toBe(7);
    expect(config.databaseUrl).toBe("postgres://u@h:5432/d");
    expect(config.redisUrl).toBe(DEFAULT_REDIS_URL);
    expect(config.explicitUrls).toEqual({ database: "postgres://u@h:5432/d", redis: undefined });
    expect(Object.isFrozen(config)).toBe(true);
  });

  it("names every invalid variable", () => {
    const err = (() => {
      try {
        loadConfig({ PORT: "eighty", DATABASE_URL: "mysql://x", ADMIN_TOKEN: "short" });
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(ConfigError);
    const message = (err as Error).message;
    expect(message).toContain("PORT");
    expect(message).toContain("DATABASE_URL");
    expect(message).toContain("ADMIN_TOKEN");
  });

  it("parses a default model price, and names it when malformed", () => {
    expect(loadConfig({ DEFAULT_MODEL_PRICE: "1000000, 500000,3000000" }).defaultModelPrice).toEqual({
      inputPerM: 1_000_000,
      cachedInputPerM: 500_000,
      outputPerM: 3_000_000,
    });
    expect(loadConfig({}).defaultModelPrice).toBeUndefined();
    expect(() => loadConfig({ DEFAULT_MODEL_PRICE: "1.5,1,2" })).toThrow(/DEFAULT_MODEL_PRICE/);
  });

  // One process for both variables: each start compiles the app with tsx, seconds on a busy machine.
  it("a bad DATABASE_URL and PORT stop the web process with a message naming each", () => {
    const result = spawnSync(process.execPath, ["--import", "tsx", "src/server.ts"], {
      env: { PATH: process.env.PATH, DATABASE_URL: "not a url", PORT: "70000" },
      encoding: "utf8",
      timeout: 50_000,
    });
    expect(result.status).toBe(1);
    expect(result.stderr).toContain("Invalid configuration");
    expect(result.stderr).toContain("DATABASE_URL");
    expect(result.stderr).toContain("PORT");
  }, 60_000);

  it("gives the knex CLI the database the app uses, an empty DATABASE_URL meaning unset", () => {
    const knexConnection = (env: Record<string, string>) => {
      const result = spawnSync(
        process.execPath,
        ["--import", "tsx", "-e", 'import("./knexfile.ts").then((m) => console.log(m.default.connection))'],
        { env: { PATH: process.env.PATH, ...env }, encoding: "utf8", timeout: 30_000 },
      );
      expect(result.stderr).toBe("");
      return result.stdout.trim();
    };
    expect(knexConnection({ DATABASE_URL: "" })).toBe(DEFAULT_DATABASE_URL);
    expect(knexConnection({ DATABASE_URL: "postgres://u@h:5432/d" })).toBe("postgres://u@h:5432/d");
  }, 70_000);
});
