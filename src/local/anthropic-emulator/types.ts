import type { EventEmitter } from "node:events";

export type AnthropicEmulatorFault =
  /** Answer this status with an Anthropic error body (529 → overloaded_error, 429 → rate_limit_error, …). */
  | { kind: "status"; status: number; message?: string; type?: string; times?: number }
  /** Destroy the socket before answering. */
  | { kind: "drop"; times?: number }
  /** Never answer. */
  | { kind: "hang"; times?: number }
  /** A stream that stops mid-way: the socket is destroyed after `afterDeltas` content deltas (default 1). */
  | { kind: "cut"; afterDeltas?: number; times?: number };

export interface AnthropicEmulatorOptions {
  host?: string;
  port?: number;
  latencyMs?: number;
  chunkDelayMs?: number;
  /** The API key to accept (x-api-key or Authorization: Bearer); when unset any non-empty key is. */
  apiKey?: string;
}

export interface AnthropicRequestRecord {
  id: string;
  model: string;
  stream: boolean;
  status: number; // 0 when no HTTP status was sent (drop, hang)
  aborted: boolean; // the client went away before the answer was complete
  /** The request's parameters as received (for tests of the translation). */
  body: unknown;
  inputTokens: number;
  cacheCreationInputTokens: number;
  cacheReadInputTokens: number;
  outputTokens: number; // for aborted streams: the tokens sent so far
  /**
   * The usage object as last sent to the client: the message's, or in a stream message_start's and
   * then message_delta's; undefined before any was sent.
   */
  usage?: AnthropicReportedUsage;
}

/** Anthropic's usage fields, as the emulator reports them (input_tokens excludes both cache counts). */
export interface AnthropicReportedUsage {
  input_tokens: number;
  cache_creation_input_tokens: number;
  cache_read_input_tokens: number;
  output_tokens: number;
  output_tokens_details?: { thinking_tokens: number } | null;
}

export interface AnthropicEmulator {
  /** The base URL for the SDK's `baseURL` (the SDK appends /v1/messages). */
  url: string;
  port: number;
  calls: number; // live count of POST /v1/messages, including faulted ones
  requests: AnthropicRequestRecord[];
  /** Emits "request" (record) once per request, when its response closes (finished, failed or aborted). */
  events: EventEmitter;
  setLatency(ms: number): void;
  setChunkDelay(ms: number): void;
  injectFault(fault: AnthropicEmulatorFault): void;
  /** The same as injectFault: the name issue #15's contract uses. */
  setFault(fault: AnthropicEmulatorFault): void;
  clearFaults(): void;
  close(): Promise<void>;
}
