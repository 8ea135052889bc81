// The OpenAI emulator as its own process, on PORT; latency changes through POST /_emulator/config.
import { startOpenAIEmulator } from "../../src/local/openai-emulator.js";

const emulator = await startOpenAIEmulator({
  port: Number(process.env.PORT),
  latencyMs: Number(process.env.LATENCY_MS ?? 0),
});
console.log(`READY ${emulator.url}`);
process.once("SIGTERM", async () => {
  await emulator.close();
  process.exit(0);
});
