// The well-behaved client of the chaos run: one Idempotency-Key per chat, kept across every retry;
// network errors and 5xx (503 while Redis or Postgres is away) retried with capped, jittered
// backoff; 202 answered by polling GET /v1/chats/{id}; a chat Postgres reports as lost is sent again.

export interface ChatResult {
  index: number;
  /** Every meterline request id the service named for this chat (one, if idempotency holds). */
  requestIds: Set<string>;
  outcome: "succeeded" | "refused" | "unanswered";
  attempts: number;
  /** The last refusal or error, for the report. */
  detail?: string;
}

export interface ClientOptions {
  url: string;
  apiKeys: string[];
  chats: number;
  concurrency: number;
  /** Every 4th chat asks `Prefer: respond-async` when true, to exercise the 202 → poll path. */
  mixAsync: boolean;
  /** A chat still unanswered at this time is given up (reported as unanswered). */
  deadline: number;
  runId: string;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const backoff = (attempt: number) =>
  Math.min(3_000, 100 * 2 ** Math.min(attempt, 5)) * (0.5 + Math.random() / 2);

/** Sends every chat, `concurrency` at a time, and resolves with each chat's final result. */
export async function runClient(opts: ClientOptions): Promise<ChatResult[]> {
  const results: ChatResult[] = [];
  let next = 0;
  const lane = async () => {
    while (next < opts.chats) results.push(await runChat(opts, next++));
  };
  await Promise.all(Array.from({ length: opts.concurrency }, lane));
  return results.sort((a, b) => a.index - b.index);
}

async function runChat(opts: ClientOptions, index: number): Promise<ChatResult> {
  const result: ChatResult = { index, requestIds: new Set(), outcome: "unanswered", attempts: 0 };
  const key = opts.apiKeys[index % opts.apiKeys.length]!;
  const headers: Record<string, string> = {
    authorization: `Bearer ${key}`,
    "content-type": "application/json",
    "idempotency-key": `chaos-${opts.runId}-${index}`,
    ...(opts.mixAsync && index % 4 === 0 ? { prefer: "respond-async" } : {}),
  };
  const body = JSON.stringify({
    model: "gpt-4o-mini",
    // Prompts of different lengths: a row billed twice or lost cannot hide behind equal sizes.
    messages: [
      {
        role: "user",
        content: `Chaos chat ${index}: ${"tell me more. ".repeat(index % 7)}answer in a few words.`,
      },
    ],
    max_tokens: 16,
  });
  while (Date.now() < opts.deadline) {
    result.attempts++;
    let res: Response;
    try {
      res = await fetch(`${opts.url}/v1/chat/completions`, {
        method: "POST",
        headers,
        body,
        signal: AbortSignal.timeout(90_000),
      });
    } catch (err) {
      result.detail = `network: ${(err as Error).message}`;
      await sleep(backoff(result.attempts));
      continue;
    }
    const requestId = res.headers.get("meterline-request-id");
    if (requestId) result.requestIds.add(requestId);
    const text = await res.text().catch(() => "");
    if (res.status === 200) return { ...result, outcome: "succeeded" };
    if (res.status === 202 && requestId) {
      const polled = await poll(opts, key, requestId, result);
      if (polled === "succeeded" || polled === "refused") return { ...result, outcome: polled };
      continue; // lost or failed transiently: the same key runs it again
    }
    result.detail = `${res.status} ${text.slice(0, 200)}`;
    if (res.status >= 500 || res.status === 429) {
      await sleep(backoff(result.attempts));
      continue;
    }
    return { ...result, outcome: "refused" };
  }
  return result;
}

/** Polls an accepted chat until it has an outcome; "retry" when it failed in a way a resend heals. */
async function poll(
  opts: ClientOptions,
  key: string,
  requestId: string,
  result: ChatResult,
): Promise<"succeeded" | "refused" | "retry"> {
  let waits = 0;
  while (Date.now() < opts.deadline) {
    await sleep(Math.min(1_000, 100 + 50 * waits++));
    let res: Response;
    try {
      res = await fetch(`${opts.url}/v1/chats/${requestId}`, {
        headers: { authorization: `Bearer ${key}` },
        signal: AbortSignal.timeout(30_000),
      });
    } catch {
      continue;
    }
    if (res.status >= 500) continue;
    if (res.status === 404) return "retry";
    const state = (await res.json().catch(() => ({}))) as {
      status?: string;
      error?: { type?: string; code?: string; message?: string };
    };
    if (state.status === "succeeded") return "succeeded";
    if (state.status === "failed" || state.status === "canceled") {
      result.detail = `polled ${state.status}: ${state.error?.code ?? ""} ${state.error?.message ?? ""}`;
      return state.error?.type === "server_error" || state.status === "canceled" ? "retry" : "refused";
    }
  }
  return "retry";
}
