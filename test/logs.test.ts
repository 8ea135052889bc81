import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { useStack, waitFor } from "./helpers/stack.js";
import { createDeps, type Deps } from "../src/deps.js";
import { startWeb } from "../src/api/listen.js";
import { createLogger } from "../src/platform/logger.js";
import { startWorkers, type Workers } from "../jobs/worker.js";

const stack = useStack({ worker: false });
let web: Awaited<ReturnType<typeof startWeb>>;
let workerDeps: Deps;
let workers: Workers;
const lines: Record<string, unknown>[] = [];
const sink = { write: (line: string) => void lines.push(JSON.parse(line)) };

beforeAll(async () => {
  // The same web and worker, logging at info into memory.
  web = await startWeb({ ...stack.web, logger: createLogger("info", "web", sink) }, 0);
  workerDeps = createDeps(stack.config, "worker");
  workers = startWorkers({ ...workerDeps, logger: createLogger("info", "worker", sink) });
});
afterAll(async () => {
  await workers?.close();
  await workerDeps?.close();
  await web?.stop();
});

describe("logs", () => {
  it("carry one request id from the HTTP request into the job's logs, and no keys or message contents", async () => {
    const { key } = await stack.customer();
    const secret = "confidential-merger-plans-4711";
    const res = await fetch(`http://127.0.0.1:${web.port}/v1/chat/completions`, {
      method: "POST",
      headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
      body: JSON.stringify({ model: "gpt-4o-mini", messages: [{ role: "user", content: secret }] }),
    });
    expect(res.status).toBe(200);
    const requestId = res.headers.get("meterline-request-id")!;
    expect(requestId).toMatch(/^chat_/);

    const request = await waitFor(() => lines.find((l) => l.msg === "request" && l.requestId === requestId));
    expect(request).toMatchObject({
      name: "web",
      method: "POST",
      route: "/v1/chat/completions",
      status: 200,
    });
    const job = lines.find((l) => l.name === "worker" && l.msg === "usage recorded");
    expect(job).toMatchObject({ requestId, jobId: requestId });

    const all = JSON.stringify(lines);
    expect(all).not.toContain(key);
    expect(all).not.toContain(secret);
  });
});
