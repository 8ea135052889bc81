import { describe, expect, it } from "vitest";
import { useStack, waitFor } from "./helpers/stack.js";

const stack = useStack({ emulator: { latencyMs: 1_500 } });

const body = { model: "gpt-4o-mini", messages: [{ role: "user", content: "join me" }], stream: true };

function post(key: string, headers: Record<string, string>) {
  return fetch(`${stack.url}/v1/chat/completions`, {
    method: "POST",
    headers: { authorization: `Bearer ${key}`, "content-type": "application/json", ...headers },
    body: JSON.stringify(body),
  });
}

describe("a stream that joins a chat", () => {
  it("replays the completion of a running job that writes no stream (begun as respond-async)", async () => {
    const { key } = await stack.customer();
    const calls = stack.emulator.calls;
    const first = await post(key, { "idempotency-key": "joined", prefer: "respond-async" });
    expect(first.status).toBe(202);
    const requestId = first.headers.get("meterline-request-id");
    await waitFor(() => stack.emulator.calls > calls, { what: "the job to call the LLM" });

    // Same key, same body, no Prefer: a stream of the job still running, which writes no stream.
    const joined = await post(key, { "idempotency-key": "joined" });
    expect(joined.status).toBe(200);
    expect(joined.headers.get("meterline-request-id")).toBe(requestId);
    expect(joined.headers.get("content-type")).toMatch(/^text\/event-stream/);
    const events = (await joined.text()).split("\n\n").filter((e) => e.startsWith("data: "));
    expect(events.at(-1)).toBe("data: [DONE]");
    const chunks = events.slice(0, -1).map((e) => JSON.parse(e.slice(6)) as { object: string });
    expect(chunks.length).toBeGreaterThan(0);
    expect(chunks.every((c) => c.object === "chat.completion.chunk")).toBe(true);
    expect(stack.emulator.calls).toBe(calls + 1);
  });
});
