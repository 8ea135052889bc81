/**
 * Stream time-to-first-token through meterline (API → chat queue → worker → LLM → Redis stream →
 * SSE) against the same stream straight from the OpenAI emulator, N sequential streams each.
 * Needs the local Postgres and Redis (as the tests do): `npx tsx bench/ttft.ts [N]`.
 * Web, worker and emulator share this process, as in the tests.
 */
import OpenAI from "openai";
import { createTestDatabase } from "../test/helpers/db.js";
import { startStack } from "../test/helpers/stack.js";

const N = Number(process.argv[2] ?? 200);
const body = {
  model: "gpt-4o-mini",
  messages: [{ role: "user" as const, content: "Tell me about metering streamed tokens" }],
  stream: true as const,
  stream_options: { include_usage: true },
};

async function ttft(client: OpenAI): Promise<number> {
  const started = performance.now();
  let first = 0;
  const stream = await client.chat.completions.create(body);
  for await (const chunk of stream) if (!first && chunk.choices[0]?.delta?.content) first = performance.now();
  return first - started;
}

async function measure(client: OpenAI): Promise<number[]> {
  for (let i = 0; i < 20; i++) await ttft(client); // warm-up: connections, JIT
  const samples: number[] = [];
  for (let i = 0; i < N; i++) samples.push(await ttft(client));
  return samples.sort((a, b) => a - b);
}

const pct = (sorted: number[], p: number) =>
  sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
const row = (name: string, s: number[]) =>
  `${name.padEnd(10)} median ${pct(s, 50).toFixed(2)} ms   p99 ${pct(s, 99).toFixed(2)} ms   (n=${s.length})`;

const database = await createTestDatabase();
const stack = await startStack({ databaseUrl: database.url, env: { RATE_LIMIT_PER_MINUTE: "0" } });
try {
  const { openai } = await stack.customer();
  const direct = new OpenAI({ baseURL: stack.emulator.url, apiKey: "sk-test", maxRetries: 0 });
  const directSamples = await measure(direct);
  const meterlineSamples = await measure(openai);
  console.log(row("direct", directSamples));
  console.log(row("meterline", meterlineSamples));
  console.log(`overhead   median ${(pct(meterlineSamples, 50) - pct(directSamples, 50)).toFixed(2)} ms`);
} finally {
  await stack.close();
  await database.drop();
}
