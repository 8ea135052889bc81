/**
 * Local OpenAI emulator: a real HTTP server that the official `openai` SDK talks to through its
 * `baseURL`. Implementation lives in ./openai-emulator/; this file is the public entry.
 */
export { startOpenAIEmulator } from "./openai-emulator/server.js";
export type {
  EmulatorFault,
  EmulatorRequestRecord,
  OpenAIEmulator,
  OpenAIEmulatorOptions,
  OpenAIReportedUsage,
} from "./openai-emulator/types.js";
