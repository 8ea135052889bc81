import http from "node:http";
import type { AddressInfo } from "node:net";
import zlib from "node:zlib";
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLlm } from "../src/llm/client.js";
import { PermanentError, RetryableError } from "../src/errors.js";
import { startOpenAIEmulator, type OpenAIEmulator } from "../src/local/openai-emulator.js";
import { chatCompletion } from "./helpers/completions.js";

const completion = chatCompletion({ id: "chatcmpl-1", content: "hi", promptTokens: 3, completionTokens: 1 });
const request = { model: "gpt-4o-mini", messages: [{ role: "user" as const, content: "hello" }] };

// A provider whose behaviour each test picks by the user message; it counts the connections it sees.
let server: http.Server;
let baseURL: string;
let connections = 0;
let emu: OpenAIEmulator;

beforeAll(async () => {
  server = http.createServer((req, res) => {
    let body = "";
    req.on("data", (c: Buffer) => (body += c.toString()));
    req.on("end", () => {
      const { messages } = JSON.parse(body) as { messages: { content: string }[] };
      const mode = messages[0]?.content;
      if (mode === "hang") return;
      if (mode === "bad") {
        res.writeHead(400, { "content-type": "application/json" });
        res.end(
          JSON.stringify({ error: { message: "max_tokens is too large", type: "invalid_request_error" } }),
        );
        return;
      }
      if (mode === "cut") {
        res.writeHead(200, { "content-type": "application/json", "content-length": "1000" });
        res.write('{"id":"chatcmpl-');
        setTimeout(() => res.destroy(), 20);
        return;
      }
      if (mode === "gzip") {
        res.writeHead(200, { "content-type": "application/json", "content-encoding": "gzip" });
        res.end(zlib.gzipSync(JSON.stringify({ ...completion, id: "chatcmpl-gzip" })));
        return;
      }
      res.writeHead(200, { "content-type": "application/json", "x-request-id": "req_1" });
      res.end(JSON.stringify({ ...completion, auth: req.headers.authorization }));
    });
  });
  server.on("connection", () => connections++);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  baseURL = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;
  emu = await startOpenAIEmulator();
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
  await emu.close();
});

describe("the LLM client's node:http transport", () => {
  it("sends the request with our credentials and parses the answer, reusing one connection", async () => {
    const llm = createLlm({ apiKey: "sk-test", baseURL, timeoutMs: 5_000 });
    const before = connections;
    for (let i = 0; i < 20; i++) {
      const answer = (await llm.complete(request)) as typeof completion & { auth?: string };
      expect(answer.choices[0]?.message.content).toBe("hi");
      expect(answer.usage.total_tokens).toBe(4);
      expect(answer.auth).toBe("Bearer sk-test");
    }
    expect(connections - before).toBe(1);
  });

  it("decodes a gzip-encoded answer", async () => {
    const llm = createLlm({ apiKey: "sk-test", baseURL, timeoutMs: 5_000 });
    const answer = await llm.complete({ ...request, messages: [{ role: "user", content: "gzip" }] });
    expect(answer.id).toBe("chatcmpl-gzip");
  });

  it("passes a provider 400 through with its message", async () => {
    const llm = createLlm({ apiKey: "sk-test", baseURL, timeoutMs: 5_000 });
    const err = await llm
      .complete({ ...request, messages: [{ role: "user", content: "bad" }] })
      .catch((e) => e);
    expect(err).toBeInstanceOf(PermanentError);
    expect((err as PermanentError).status).toBe(400);
    expect((err as Error).message).toBe("max_tokens is too large");
  });

  it("fails at once, retryably, when the connection is cut in the middle of the answer", async () => {
    const llm = createLlm({ apiKey: "sk-test", baseURL, timeoutMs: 30_000 });
    const started = Date.now();
    const err = await llm
      .complete({ ...request, messages: [{ role: "user", content: "cut" }] })
      .catch((e) => e);
    expect(err).toBeInstanceOf(RetryableError);
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it("turns a provider that never answers into a retryable timeout", async () => {
    const llm = createLlm({ apiKey: "sk-test", baseURL, timeoutMs: 200 });
    const started = Date.now();
    const err = await llm
      .complete({ ...request, messages: [{ role: "user", content: "hang" }] })
      .catch((e) => e);
    expect(err).toBeInstanceOf(RetryableError);
    expect((err as Error).message).toMatch(/timed out/i);
    expect(Date.now() - started).toBeLessThan(2_000);
  });

  it("stops a call when the caller aborts it", async () => {
    const llm = createLlm({ apiKey: "sk-test", baseURL, timeoutMs: 5_000 });
    const controller = new AbortController();
    const call = llm.complete(
      { ...request, messages: [{ role: "user", content: "hang" }] },
      {
        signal: controller.signal,
      },
    );
    setImmediate(() => controller.abort());
    const err = await call.catch((e) => e);
    expect((err as Error).cause).toBeInstanceOf(OpenAI.APIUserAbortError);
  });

  it("streams chunks and the final usage chunk from an event stream", async () => {
    const llm = createLlm({ apiKey: "sk-test", baseURL: emu.url, timeoutMs: 5_000 });
    let text = "";
    let usage: { prompt_tokens: number; completion_tokens: number } | undefined;
    for await (const chunk of llm.stream(request)) {
      text += chunk.choices[0]?.delta.content ?? "";
      if (chunk.usage) usage = chunk.usage;
    }
    expect(text).toBe("Echo: hello");
    expect(usage?.completion_tokens).toBeGreaterThan(0);
    expect(usage?.prompt_tokens).toBeGreaterThan(0);
  });

  it("cannot reach a closed port: a retryable connection error", async () => {
    const llm = createLlm({ apiKey: "sk-test", baseURL: "http://127.0.0.1:9/v1", timeoutMs: 5_000 });
    const err = await llm.complete(request).catch((e) => e);
    expect(err).toBeInstanceOf(RetryableError);
    expect((err as Error).message).toMatch(/unreachable/);
  });
});
