import { spawn } from "node:child_process";
import { pollUntilFinished } from "../src/queues/chat-replies.js";
import { createInterface } from "node:readline";
import { describe, expect, it } from "vitest";
import { ask, useStack, waitFor } from "./helpers/stack.js";

const stack = useStack({ emulator: { latencyMs: 1_500 } });

/** A web process as a child (`node --import tsx src/server.ts`) on a free port. */
async function spawnWeb(env: Record<string, string> = {}) {
  const child = spawn(process.execPath, ["--import", "tsx", "src/server.ts"], {
    env: {
      PATH: process.env.PATH,
      PORT: "0",
      DATABASE_URL: stack.config.databaseUrl!,
      REDIS_URL: stack.config.redisUrl,
      QUEUE_PREFIX: stack.config.queuePrefix,
      LOG_LEVEL: "info",
      ...env,
    },
    stdio: ["ignore", "pipe", "ignore"],
  });
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  let port = 0;
  const lines = createInterface({ input: child.stdout! });
  for await (const line of lines) {
    const entry = JSON.parse(line) as { msg: string; port?: number };
    if (entry.msg === "web listening") {
      port = entry.port!;
      break;
    }
  }
  child.stdout!.resume(); // keep draining its log so it never blocks on a full pipe
  return { child, exited, url: `http://127.0.0.1:${port}` };
}

async function chatInFlight(url: string, key: string) {
  const before = stack.emulator.calls;
  const response = stack.chat(key, ask("finish me"), { url });
  await waitFor(() => stack.emulator.calls > before, { what: "the job to call the LLM" });
  return { response }; // wrapped: returning the promise itself would wait for it
}

describe("SIGTERM to a web process", () => {
  it("stops accepting, finishes the requests in flight, and exits cleanly", async () => {
    const { key } = await stack.customer();
    const web = await spawnWeb();
    const inFlight = await chatInFlight(web.url, key);
    web.child.kill("SIGTERM");

    const res = await inFlight.response;
    expect(res.status).toBe(200);
    expect(res.body.object).toBe("chat.completion");
    expect(await web.exited).toBe(0);
    await expect(stack.chat(key, ask("too late"), { url: web.url })).rejects.toThrow();
  });

  it("answers 202 near the deadline to a request whose job is still running; the job completes", async () => {
    const { customerId, key } = await stack.customer();
    stack.emulator.setLatency(6_000);
    try {
      const web = await spawnWeb({ SHUTDOWN_TIMEOUT_MS: "4000" });
      const inFlight = await chatInFlight(web.url, key);
      web.child.kill("SIGTERM");

      const res = await inFlight.response;
      expect(res.status).toBe(202);
      const requestId = res.requestId!;
      expect(res.headers.get("location")).toBe(`/v1/chats/${requestId}`);
      expect(await web.exited).toBe(0);
      const job = (await stack.web.queues.chat.getJob(requestId))!;
      await pollUntilFinished(stack.web.queues.chat, job!.id!, 20_000);
      expect(await stack.db("usage_events").where({ customer_id: customerId })).toHaveLength(1);
    } finally {
      stack.emulator.setLatency(1_500);
    }
    // A tsx start (seconds on a busy machine), the 6 s call and the 4 s deadline.
  }, 60_000);
});
