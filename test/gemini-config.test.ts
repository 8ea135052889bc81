import { describe, expect, it } from "vitest";
import { loadConfig } from "../src/config.js";
import { ConfigError } from "../src/errors.js";

describe("config: Gemini", () => {
  it("is undefined without GEMINI_API_KEY (npm start then runs the emulator)", () => {
    expect(loadConfig({ GEMINI_BASE_URL: "http://127.0.0.1:9" }).gemini).toBeUndefined();
    expect(loadConfig({ GEMINI_API_KEY: "" }).gemini).toBeUndefined();
  });

  it("carries the key and base URL", () => {
    expect(loadConfig({ GEMINI_API_KEY: "g-key", GEMINI_BASE_URL: "http://127.0.0.1:9" }).gemini).toEqual({
      apiKey: "g-key",
      baseUrl: "http://127.0.0.1:9",
    });
    expect(loadConfig({ GEMINI_API_KEY: "g-key" }).gemini).toEqual({ apiKey: "g-key", baseUrl: undefined });
  });

  it("refuses a base URL that is not http(s), naming the variable", () => {
    expect(() => loadConfig({ GEMINI_API_KEY: "g", GEMINI_BASE_URL: "ftp://x" })).toThrow(ConfigError);
    expect(() => loadConfig({ GEMINI_API_KEY: "g", GEMINI_BASE_URL: "ftp://x" })).toThrow(/GEMINI_BASE_URL/);
  });
});
