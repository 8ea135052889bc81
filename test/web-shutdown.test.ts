import { spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase } from "./helpers/db.js";
import { startStack, waitFor, type Stack } from "./helpers/stack.js";

let database: Awaited<ReturnType<typeof createTestDatabase>>;
let stack: Stack;

beforeAll(async () => {
  database = await createTestDatabase();
  stack = await startStack({ databaseUrl: database.url, emulator: { latencyMs: 1_500 } });
});
afterAll(async () => {
  await stack?.close();
  await database?.drop();
});

describe("SIGTERM to a web process", () => {
  it("stops accepting, finishes the requests in flight, and exits cleanly", async () => {
    const { key } = await stack.customer();
    const child = spawn(process.execPath, ["--import", "tsx", "src/server.ts"], {
      env: {
        PATH: process.env.PATH,
        PORT: "0",
        DATABASE_URL: database.url,
        REDIS_URL: stack.config.redisUrl,
        QUEUE_PREFIX: stack.config.queuePrefix,
        LOG_LEVEL: "info",
      },
      stdio: ["ignore", "pipe", "ignore"],
    });
    const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
    let port = 0;
    for await (const line of createInterface({ input: child.stdout! })) {
      const entry = JSON.parse(line) as { msg: string; port?: number };
      if (entry.msg === "web listening") {
        port = entry.port!;
        break;
      }
    }
    const url = `http://127.0.0.1:${port}/v1/chat/completions`;
    const inFlight = fetch(url, {
      method: "POST",
      headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
      body: JSON.stringify({ model: "gpt-4o-mini", messages: [{ role: "user", content: "finish me" }] }),
    });
    // The job is running (the LLM takes 1.5 s) when the signal arrives.
    const before = stack.emulator.calls;
    await waitFor(() => stack.emulator.calls > before, { what: "the job to call the LLM" });
    child.kill("SIGTERM");

    const res = await inFlight;
    expect(res.status).toBe(200);
    expect(((await res.json()) as { object: string }).object).toBe("chat.completion");
    expect(await exited).toBe(0);
    await expect(fetch(url, { method: "POST" })).rejects.toThrow();
  });
});
