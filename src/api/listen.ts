import type { Server } from "node:http";
import type { WebDeps } from "../deps.js";
import { createApp } from "./app.js";
import { loadTokenizer } from "../llm/token-counter.js";

/** Starts the HTTP API on a port and returns a stop() that drains in-flight requests. */
export async function startWeb(
  deps: WebDeps,
  port: number,
): Promise<{ server: Server; port: number; stop(): Promise<void> }> {
  // Hard-limit plans estimate every chat: load the tokenizer before the first one, not inside it.
  await loadTokenizer();
  const app = createApp(deps);
  const server = app.listen(port);
  await new Promise<void>((resolve, reject) => {
    server.once("listening", resolve);
    server.once("error", reject);
  });
  // Longer than typical load-balancer idle timeouts, so the proxy closes idle sockets first.
  server.keepAliveTimeout = 65_000;
  const address = server.address();
  const actualPort = typeof address === "object" && address ? address.port : port;
  return {
    server,
    port: actualPort,
    stop: () =>
      new Promise<void>((resolve) => {
        // Keep-alive sockets go idle as their last response ends: close them as they do.
        const idle = setInterval(() => server.closeIdleConnections(), 250);
        server.close(() => {
          clearInterval(idle);
          resolve();
        });
        server.closeIdleConnections();
      }),
  };
}
