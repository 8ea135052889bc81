import { beforeAll, describe, expect, it } from "vitest";
import { ADMIN_TOKEN, useStack, type Stack } from "./helpers/stack.js";
import { startMetricsServer } from "../src/platform/metrics-server.js";

const stack = useStack({ worker: false });
let worker: Awaited<ReturnType<Stack["startWorker"]>>;

beforeAll(async () => {
  worker = await stack.startWorker();
});

type Sample = { name: string; labels: Record<string, string>; value: number };

/**
 * Parses Prometheus text exposition; throws on any line that is not a comment or a sample. (Values
 * go through Go's ParseFloat in Prometheus, which takes "NaN" in any case; prom-client writes "Nan".)
 */
function parsePrometheus(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split("\n")) {
    if (line === "" || /^# (HELP|TYPE) [a-zA-Z_:][\w:]* /.test(line)) continue;
    const match = line.match(/^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (-?[\d.e+-]+|[Nn]a[Nn]|[+-]Inf)$/);
    if (!match) throw new Error(`not Prometheus text: ${line}`);
    const labels: Record<string, string> = {};
    for (const [, k, v] of (match[2] ?? "").matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[k!] = v!;
    samples.push({ name: match[1]!, labels, value: Number(match[3]) });
  }
  return samples;
}

const scrape = async () => {
  const res = await fetch(`${stack.url}/metrics`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
  expect(res.status).toBe(200);
  expect(res.headers.get("content-type")).toMatch(/^text\/plain/);
  return parsePrometheus(await res.text());
};
const value = (samples: Sample[], name: string, labels: Record<string, string>) =>
  samples
    .filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
    .reduce((sum, s) => sum + s.value, 0);

describe("/metrics", () => {
  it("requires the admin token", async () => {
    expect((await fetch(`${stack.url}/metrics`)).status).toBe(401);
    const wrong = await fetch(`${stack.url}/metrics`, { headers: { authorization: "Bearer nope" } });
    expect(wrong.status).toBe(401);
  });

  it("parses as Prometheus text, and its counters move with traffic", async () => {
    const route = { route: "/v1/chat/completions", status: "200" };
    const before = await scrape();
    const { openai } = await stack.customer();
    await openai.chat.completions.create({
      model: "gpt-4o-mini",
      messages: [{ role: "user", content: "count me" }],
    });
    await openai.chat.completions.create({
      model: "gpt-4o-mini",
      messages: [{ role: "user", content: "and me" }],
    });
    const after = await scrape();

    const requests = "meterline_http_request_duration_seconds_count";
    expect(value(after, requests, route) - value(before, requests, route)).toBe(2);
    const queue = { queue: "chat", state: "completed" };
    expect(value(after, "meterline_queue_jobs", queue) - value(before, "meterline_queue_jobs", queue)).toBe(
      2,
    );
    expect(after.some((s) => s.name === "meterline_queue_jobs" && s.labels.state === "waiting")).toBe(true);

    // Job and token metrics live in the worker process's registry (served on its METRICS_PORT).
    const jobs = parsePrometheus(await worker.deps.metrics.registry.metrics());
    expect(
      value(jobs, "meterline_job_duration_seconds_count", { queue: "chat", outcome: "completed" }),
    ).toBeGreaterThanOrEqual(2);
    expect(
      value(jobs, "meterline_tokens_total", { model: "gpt-4o-mini", type: "completion" }),
    ).toBeGreaterThan(0);
  });

  it("can be served on a port of its own (METRICS_PORT), as the worker process does", async () => {
    const server = await startMetricsServer(worker.deps.metrics.registry, 0);
    try {
      const res = await fetch(`http://127.0.0.1:${server.port}/metrics`);
      expect(res.status).toBe(200);
      const samples = parsePrometheus(await res.text());
      expect(samples.some((s) => s.name === "meterline_tokens_total")).toBe(true);
      expect((await fetch(`http://127.0.0.1:${server.port}/other`)).status).toBe(404);
    } finally {
      await server.stop();
    }
  });
});
