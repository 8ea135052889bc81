import type { EventEmitter } from "node:events";

export type EmulatorFault =
  | { kind: "status"; status: number; message?: string; type?: string; code?: string; times?: number }
  | { kind: "drop"; times?: number }
  | { kind: "hang"; times?: number };
export interface OpenAIEmulatorOptions {
  host?: string;
  port?: number;
  latencyMs?: number;
  chunkDelayMs?: number;
  apiKey?: string;
  omitUsage?: boolean;
  /** Answer every chat with this many tokens of filler (up to its max tokens) instead of an echo. */
  answerTokens?: number;
}
export interface EmulatorRequestRecord {
  id: string;
  model: string;
  stream: boolean;
  status: number; // 0 when no HTTP status was sent (drop, hang)
  aborted: boolean; // the client went away before the answer was complete
  promptTokens: number;
  completionTokens: number; // for aborted streams: reasoning + visible tokens sent so far
  /** The usage object as sent to the client; undefined when none was (omitted, or a stream cut short). */
  usage?: OpenAIReportedUsage;
}
/** OpenAI's usage fields, as the emulator reports them. */
export interface OpenAIReportedUsage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  prompt_tokens_details: { cached_tokens: number };
  completion_tokens_details: { reasoning_tokens: number };
}
export interface OpenAIEmulator {
  url: string;
  port: number;
  calls: number; // live count of POST /v1/chat/completions, including faulted ones
  requests: EmulatorRequestRecord[];
  /** Emits "request" (record) once per chat request, when its response closes (finished, failed or aborted). */
  events: EventEmitter;
  setLatency(ms: number): void;
  setChunkDelay(ms: number): void;
  setOmitUsage(omit: boolean): void;
  setAnswerTokens(tokens: number | undefined): void;
  injectFault(fault: EmulatorFault): void;
  clearFaults(): void;
  close(): Promise<void>;
}
