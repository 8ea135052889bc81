/**
 * Local Gemini emulator: a real HTTP server that the official `@google/genai` SDK talks to through
 * `httpOptions.baseUrl`. Implementation lives in ./gemini-emulator/; this file is the public entry.
 */
export { startGeminiEmulator } from "./gemini-emulator/server.js";
export type {
  GeminiEmulator,
  GeminiEmulatorFault,
  GeminiEmulatorOptions,
  GeminiReportedUsage,
  GeminiRequestRecord,
} from "./gemini-emulator/types.js";
