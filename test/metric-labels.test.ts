import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { countTokens, createMetrics } from "../src/platform/metrics.js";
import { MAX_LABEL_VALUES } from "../src/platform/metric-labels.js";
import { MODEL_PRICES } from "../src/billing/pricing/prices.js";
import { useStack, waitFor } from "./helpers/stack.js";

// A default price lets any model name through intake, as an operator may configure it.
const stack = useStack({ worker: false, env: { DEFAULT_MODEL_PRICE: "1000000,500000,3000000" } });

const TOKEN_TYPES = 5;
/** Time series of one metric in a registry, counted as Prometheus would store them. */
async function series(registry: ReturnType<typeof createMetrics>["registry"], name: string) {
  const metric = (await registry.getMetricsAsJSON()).find((m) => m.name === name);
  return (metric?.values ?? []) as Array<{ labels: Record<string, string | number> }>;
}
const randomModel = () => `m-${randomBytes(8).toString("hex")}`;

describe("metric labels from customer input", () => {
  it("100,000 rows with distinct random model names leave the token series bounded", async () => {
    const metrics = createMetrics(() => []);
    const row = {
      source: "ingested",
      promptTokens: 0,
      cachedTokens: 0,
      cacheWriteTokens: 0,
      completionTokens: 0,
      reasoningTokens: 0,
    };
    for (let i = 0; i < 100_000; i++) countTokens(metrics, { ...row, model: randomModel() });
    countTokens(metrics, { ...row, model: "gpt-4o-mini", promptTokens: 5 });
    countTokens(metrics, { ...row, model: "gpt-4o-2024-08-06", promptTokens: 7 });

    const values = await series(metrics.registry, "meterline_tokens_total");
    const models = new Set(values.map((v) => v.labels.model));
    expect(models).toEqual(new Set(["other", "gpt-4o-mini", "gpt-4o"]));
    expect(values.length).toBe(3 * TOKEN_TYPES);
    // A dated snapshot counts under its family's name.
    const prompt = values.find((v) => v.labels.model === "gpt-4o" && v.labels.type === "prompt");
    expect(prompt).toMatchObject({ value: 7 });
  });

  it("caps distinct values per label even among known ones", () => {
    const metrics = createMetrics(() => []);
    const labels = Array.from({ length: MAX_LABEL_VALUES + 10 }, () => metrics.modelLabel("gpt-4o"));
    expect(new Set(labels)).toEqual(new Set(["gpt-4o"]));
    expect(MODEL_PRICES.length).toBeLessThan(MAX_LABEL_VALUES);
    const types = Array.from({ length: MAX_LABEL_VALUES + 10 }, (_, i) => metrics.webhookTypeLabel(`t.${i}`));
    expect(new Set(types).size).toBe(MAX_LABEL_VALUES + 1);
    expect(types.at(-1)).toBe("other");
  });

  it("ingested events with random model names through the worker add no series per name", async () => {
    const { key } = await stack.customer();
    const workerDeps = (await stack.startWorker()).deps;
    const before = (await series(workerDeps.metrics.registry, "meterline_tokens_total")).length;
    const batches = 3;
    for (let b = 0; b < batches; b++) {
      const events = Array.from({ length: 1_000 }, (_, i) => ({
        id: `evt-${b}-${i}`,
        model: randomModel(),
        prompt_tokens: 1,
        completion_tokens: 1,
      }));
      const res = await fetch(`${stack.url}/v1/usage`, {
        method: "POST",
        headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
        body: JSON.stringify({ events }),
      });
      expect(res.status).toBe(202);
    }
    await waitFor(async () => Number((await stack.db("usage_events").count({ n: "*" }))[0]!.n) === 3_000, {
      timeoutMs: 30_000,
      what: "3,000 ingested rows",
    });
    const values = await series(workerDeps.metrics.registry, "meterline_tokens_total");
    expect(values.length - before).toBe(TOKEN_TYPES);
    expect(values.every((v) => v.labels.model === "other")).toBe(true);
  });
});
