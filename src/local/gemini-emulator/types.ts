import type { EventEmitter } from "node:events";

export type GeminiEmulatorFault =
  /** Answer with this HTTP status and Google's error body. */
  | { kind: "status"; status: number; message?: string; times?: number }
  /** Stop the answer mid-way: the socket is destroyed after this many stream chunks (0: before any). */
  | { kind: "cut"; afterChunks: number; times?: number };

export interface GeminiEmulatorOptions {
  host?: string;
  port?: number;
  /** Wait this long before answering. */
  latencyMs?: number;
  /** Wait this long before each stream chunk. */
  chunkDelayMs?: number;
  /** The key every request must carry (x-goog-api-key or ?key=); any key when unset. */
  apiKey?: string;
}

export interface GeminiRequestRecord {
  id: string; // the responseId
  model: string;
  stream: boolean;
  status: number; // 0 when no HTTP status was sent (a cut before the answer)
  aborted: boolean; // the client went away before the answer was complete
  promptTokens: number;
  cachedTokens: number;
  thoughtsTokens: number;
  candidatesTokens: number; // for aborted streams: the tokens sent so far
  body: unknown; // the request body as received (what the SDK sent)
  /** The usageMetadata last sent to the client (a stream repeats it on every chunk); undefined before any. */
  usage?: GeminiReportedUsage;
}

/** Gemini's usageMetadata fields, as the emulator reports them (promptTokenCount includes the cached ones). */
export interface GeminiReportedUsage {
  promptTokenCount: number;
  candidatesTokenCount: number;
  totalTokenCount: number;
  cachedContentTokenCount?: number;
  thoughtsTokenCount?: number;
  promptTokensDetails?: { modality: string; tokenCount: number }[];
}

export interface GeminiEmulator {
  /** The SDK's `httpOptions.baseUrl` (the SDK adds /v1beta/models/…). */
  url: string;
  port: number;
  requests: GeminiRequestRecord[];
  /** Emits "request" (record) once per generate request, when its response closes. */
  events: EventEmitter;
  setLatency(ms: number): void;
  setChunkDelay(ms: number): void;
  /** Queues a fault for the next `times` requests (1 by default). */
  setFault(fault: GeminiEmulatorFault): void;
  clearFaults(): void;
  close(): Promise<void>;
}
