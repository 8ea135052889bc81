/**
 * Local Anthropic emulator: a real HTTP server that the official `@anthropic-ai/sdk` talks to
 * through its `baseURL`. Implementation lives in ./anthropic-emulator/; this file is the public entry.
 */
export { startAnthropicEmulator } from "./anthropic-emulator/server.js";
export type {
  AnthropicEmulator,
  AnthropicEmulatorFault,
  AnthropicEmulatorOptions,
  AnthropicReportedUsage,
  AnthropicRequestRecord,
} from "./anthropic-emulator/types.js";
