import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { findProvider } from "@pydantic/genai-prices";
import { afterEach, describe, expect, it } from "vitest";
import { loadConfig } from "../src/config.js";
import { ConfigError } from "../src/errors.js";
import snapshotFile from "../src/billing/pricing/price-snapshot.json" with { type: "json" };
import {
  installPriceOverrides,
  MODEL_PRICES,
  priceFor,
  readPriceFile,
  SNAPSHOT_PRICES,
  withOverrides,
  type ModelPrice,
} from "../src/billing/pricing/prices.js";
import { MODEL_PROVIDERS } from "../src/llm/providers.js";

const dir = mkdtempSync(join(tmpdir(), "meterline-prices-"));
const file = (name: string, body: unknown) => {
  const path = join(dir, name);
  writeFileSync(path, typeof body === "string" ? body : JSON.stringify(body));
  return path;
};
const env = (extra: Record<string, string>) => ({
  DATABASE_URL: "postgres://postgres@127.0.0.1:5432/x",
  REDIS_URL: "redis://127.0.0.1:6379",
  ...extra,
});

afterEach(() => installPriceOverrides([]));

describe("the price snapshot", () => {
  it("loads, names its source, and prices every model of the provider table", () => {
    expect(snapshotFile.source).toBe("@pydantic/genai-prices@0.1.8");
    expect(SNAPSHOT_PRICES.length).toBeGreaterThanOrEqual(Object.keys(MODEL_PROVIDERS).length);
    for (const model of Object.keys(MODEL_PROVIDERS)) expect(priceFor(model)?.model, model).toBe(model);
  });

  it("holds the maintained source's rates, in integer micro-dollars per 1M tokens", () => {
    const sources = { openai: "openai", anthropic: "anthropic", gemini: "google" } as const;
    for (const [model, provider] of Object.entries(MODEL_PROVIDERS)) {
      const info = findProvider({ providerId: sources[provider] })!.models.find((m) => m.id === model)!;
      const prices = info.prices as Record<string, number | { base: number }>;
      const dollars = (v: number | { base: number } | undefined) => (typeof v === "object" ? v.base : v);
      const price = priceFor(model)!;
      expect(price.inputPerM, model).toBe(Math.round(dollars(prices.input_mtok)! * 1e6));
      expect(price.outputPerM, model).toBe(Math.round(dollars(prices.output_mtok)! * 1e6));
      const read = dollars(prices.cache_read_mtok);
      if (read !== undefined) expect(price.cachedInputPerM, model).toBe(Math.round(read * 1e6));
      const write = dollars(prices.cache_write_mtok);
      expect(price.cacheWritePerM, model).toBe(
        write === undefined ? price.inputPerM : Math.round(write * 1e6),
      );
    }
  });
});

describe("price overrides", () => {
  const cheaper: ModelPrice = {
    model: "gpt-4o-mini",
    effectiveFrom: "1970-01-01",
    inputPerM: 1,
    cachedInputPerM: 1,
    outputPerM: 2,
  };

  it("win over the snapshot's price of the same model and date, and add new models", () => {
    const table = withOverrides(SNAPSHOT_PRICES, [cheaper, { ...cheaper, model: "my-local-model" }]);
    expect(priceFor("gpt-4o-mini", new Date(), table)).toEqual(cheaper);
    expect(priceFor("gpt-4o-mini-2024-07-18", new Date(), table)?.inputPerM).toBe(1);
    expect(priceFor("my-local-model", new Date(), table)?.outputPerM).toBe(2);
    expect(table.filter((p) => p.model === "gpt-4o-mini")).toHaveLength(1);
  });

  it("take effect from their date: a new price dated ahead leaves the past at the snapshot's", () => {
    const later = { ...cheaper, effectiveFrom: "2027-01-01" };
    const table = withOverrides(SNAPSHOT_PRICES, [later]);
    expect(priceFor("gpt-4o-mini", new Date("2026-12-31T23:59:59Z"), table)?.inputPerM).toBe(150_000);
    expect(priceFor("gpt-4o-mini", new Date("2027-01-01T00:00:00Z"), table)?.inputPerM).toBe(1);
  });

  it("come from MODEL_PRICES_FILE, validated, and are put in force for the process", () => {
    const path = file("ok.json", { prices: [cheaper] });
    const config = loadConfig(env({ MODEL_PRICES_FILE: path }));
    expect(config.priceOverrides).toEqual([cheaper]);
    installPriceOverrides(config.priceOverrides);
    expect(priceFor("gpt-4o-mini")?.inputPerM).toBe(1);
    installPriceOverrides([]);
    expect(priceFor("gpt-4o-mini")?.inputPerM).toBe(150_000);
    expect(MODEL_PRICES).toEqual(SNAPSHOT_PRICES);
  });

  it.each([
    ["a missing file", undefined, /MODEL_PRICES_FILE: .*missing\.json: ENOENT/],
    ["not JSON", "{", /MODEL_PRICES_FILE: .*not-json\.json: /],
    ["a fractional rate", { prices: [{ ...cheaper, inputPerM: 0.5 }] }, /prices\.0\.inputPerM/],
    ["a bad date", { prices: [{ ...cheaper, effectiveFrom: "Jan 1" }] }, /effectiveFrom must be YYYY-MM-DD/],
    ["an unknown field", { prices: [{ ...cheaper, inputPerK: 1 }] }, /prices\.0/],
  ])("refuse %s at start, naming the variable and the field", (what, body, message) => {
    const name =
      what === "a missing file" ? "missing.json" : what === "not JSON" ? "not-json.json" : "bad.json";
    const path = body === undefined ? join(dir, name) : file(name, body);
    expect(() => loadConfig(env({ MODEL_PRICES_FILE: path }))).toThrow(ConfigError);
    expect(() => loadConfig(env({ MODEL_PRICES_FILE: path }))).toThrow(message);
    expect(() => readPriceFile(path)).toThrow();
  });
});
