import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ask, useStack, waitFor } from "./helpers/stack.js";
import { startWeb } from "../src/api/listen.js";
import { createLogger } from "../src/platform/logger.js";

const stack = useStack({ worker: false });
let web: Awaited<ReturnType<typeof startWeb>>;
const lines: Record<string, unknown>[] = [];
const sink = { write: (line: string) => void lines.push(JSON.parse(line)) };

beforeAll(async () => {
  // The same web and worker, logging at info into memory.
  web = await startWeb({ ...stack.web, logger: createLogger("info", "web", sink) }, 0);
  await stack.startWorker({}, { logger: createLogger("info", "worker", sink) });
});
afterAll(async () => {
  await web?.stop();
});

describe("logs", () => {
  it("carry one request id from the HTTP request into the job's logs, and no keys or message contents", async () => {
    const { key } = await stack.customer();
    const secret = "confidential-merger-plans-4711";
    const res = await stack.chat(key, ask(secret), { url: `http://127.0.0.1:${web.port}` });
    expect(res.status).toBe(200);
    const requestId = res.requestId!;
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
