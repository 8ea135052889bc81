import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { ApiError, GoogleGenAI } from "@google/genai";
import { startGeminiEmulator, type GeminiEmulator } from "../src/local/gemini-emulator.js";

// The emulator as Google's own SDK sees it: Gemini's raw fields, its auth and its faults.

let emu: GeminiEmulator;
let ai: GoogleGenAI;

beforeAll(async () => {
  emu = await startGeminiEmulator({ apiKey: "emu-key" });
  ai = new GoogleGenAI({ apiKey: "emu-key", httpOptions: { baseUrl: emu.url } });
});
afterAll(async () => {
  await emu.close();
});
afterEach(() => {
  emu.clearFaults();
  emu.setLatency(0);
});

const model = "gemini-2.5-flash";

describe("gemini emulator", () => {
  it("answers generateContent with Gemini's usage fields, thinking apart from candidates", async () => {
    const plain = await ai.models.generateContent({ model, contents: "Hello there" });
    expect(plain.text).toBe("Echo: Hello there");
    expect(plain.candidates?.[0]?.finishReason).toBe("STOP");
    const u = plain.usageMetadata!;
    expect(u.thoughtsTokenCount).toBeUndefined();
    expect(u.cachedContentTokenCount).toBeUndefined();
    expect(u.totalTokenCount).toBe(u.promptTokenCount! + u.candidatesTokenCount!);

    const thinking = await ai.models.generateContent({
      model,
      contents: "Hello there",
      config: { thinkingConfig: { thinkingBudget: 3 } },
    });
    const t = thinking.usageMetadata!;
    expect(t.thoughtsTokenCount).toBe(3);
    expect(t.candidatesTokenCount).toBe(u.candidatesTokenCount);
    expect(t.totalTokenCount).toBe(t.promptTokenCount! + t.candidatesTokenCount! + 3);
    const off = await ai.models.generateContent({
      model,
      contents: "Hello there",
      config: { thinkingConfig: { thinkingBudget: 0 } },
    });
    expect(off.usageMetadata?.thoughtsTokenCount).toBeUndefined();
  });

  it("thinking spends the same maxOutputTokens as the answer", async () => {
    const r = await ai.models.generateContent({
      model,
      contents: "one two three four five six seven eight",
      config: { maxOutputTokens: 6, thinkingConfig: { thinkingBudget: 4 } },
    });
    expect(r.usageMetadata?.thoughtsTokenCount).toBe(4);
    expect(r.usageMetadata?.candidatesTokenCount).toBe(2);
    expect(r.candidates?.[0]?.finishReason).toBe("MAX_TOKENS");
  });

  it("reads a repeated long prefix from the implicit cache, below the minimum never", async () => {
    const long = "Every usage row is billed exactly once. ".repeat(200);
    const first = await ai.models.generateContent({ model, contents: long });
    const again = await ai.models.generateContent({ model, contents: long });
    expect(first.usageMetadata?.cachedContentTokenCount).toBeUndefined();
    expect(again.usageMetadata?.cachedContentTokenCount).toBe(again.usageMetadata?.promptTokenCount);
    await ai.models.generateContent({ model, contents: "short prompt" });
    const short = await ai.models.generateContent({ model, contents: "short prompt" });
    expect(short.usageMetadata?.cachedContentTokenCount).toBeUndefined();
    // Pro's minimum is 4096 tokens: the same prompt is not cached there.
    await ai.models.generateContent({ model: "gemini-2.5-pro", contents: long });
    const pro = await ai.models.generateContent({ model: "gemini-2.5-pro", contents: long });
    expect(pro.usageMetadata?.cachedContentTokenCount).toBeUndefined();
  });

  it("streams over SSE with usageMetadata on every chunk and finishReason on the last", async () => {
    const chunks = [];
    for await (const c of await ai.models.generateContentStream({
      model,
      contents: "a b c d e f g h i j k l",
    }))
      chunks.push(c);
    expect(chunks.length).toBeGreaterThan(2);
    expect(chunks.map((c) => c.text).join("")).toBe("Echo: a b c d e f g h i j k l");
    expect(chunks.slice(0, -1).every((c) => c.candidates?.[0]?.finishReason === undefined)).toBe(true);
    expect(chunks.at(-1)?.candidates?.[0]?.finishReason).toBe("STOP");
    const counts = chunks.map((c) => c.usageMetadata?.candidatesTokenCount ?? -1);
    expect(counts).toEqual([...counts].sort((a, b) => a - b));
    expect(emu.requests.at(-1)?.candidatesTokens).toBe(counts.at(-1));
  });

  it("checks the API key: header or key= query; Google's 400 API_KEY_INVALID, 403 without one", async () => {
    const byQuery = await fetch(`${emu.url}/v1beta/models/${model}:generateContent?key=emu-key`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ contents: [{ role: "user", parts: [{ text: "hi" }] }] }),
    });
    expect(byQuery.status).toBe(200);
    const none = await fetch(`${emu.url}/v1beta/models/${model}:generateContent`, {
      method: "POST",
      body: "{}",
    });
    expect(none.status).toBe(403);
    expect(((await none.json()) as { error: { status: string } }).error.status).toBe("PERMISSION_DENIED");
    const wrong = new GoogleGenAI({ apiKey: "nope", httpOptions: { baseUrl: emu.url } });
    const err = await wrong.models.generateContent({ model, contents: "hi" }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect((err as ApiError).status).toBe(400);
    expect((err as ApiError).message).toContain("API_KEY_INVALID");
  });

  it("injects faults for the next N requests, in Google's error shape", async () => {
    emu.setFault({ kind: "status", status: 503, times: 2 });
    for (let i = 0; i < 2; i++) {
      const err = (await ai.models
        .generateContent({ model, contents: "x" })
        .catch((e: unknown) => e)) as ApiError;
      expect(err.status).toBe(503);
      expect(JSON.parse(err.message)).toMatchObject({ error: { code: 503, status: "UNAVAILABLE" } });
    }
    expect((await ai.models.generateContent({ model, contents: "x" })).text).toBe("Echo: x");
    expect(emu.requests.slice(-3).map((r) => r.status)).toEqual([503, 503, 200]);
  });

  it("delays answers by the set latency", async () => {
    emu.setLatency(150);
    const started = performance.now();
    await ai.models.generateContent({ model, contents: "slow" });
    expect(performance.now() - started).toBeGreaterThanOrEqual(140);
  });
});
