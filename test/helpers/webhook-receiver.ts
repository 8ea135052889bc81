import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";

export interface Received {
  path: string;
  headers: Record<string, string | string[] | undefined>;
  body: string;
  event: { id: string; type: string; created: number; data: unknown };
}

/**
 * An operator's webhook endpoint: records every POST it answers. `down()` closes the port (connection
 * refused), `up()` listens again on the same port; `status` is what it answers while up.
 */
export async function startReceiver(): Promise<{
  url: (path?: string) => string;
  received: Received[];
  status: number;
  down(): Promise<void>;
  up(): Promise<void>;
  close(): Promise<void>;
}> {
  const received: Received[] = [];
  let server: Server | undefined;
  let port = 0;
  const receiver = {
    received,
    status: 200,
    url: (path = "/hook") => `http://127.0.0.1:${port}${path}`,
    async up() {
      const s = createServer((req, res) => {
        const chunks: Buffer[] = [];
        req.on("data", (chunk: Buffer) => chunks.push(chunk));
        req.on("end", () => {
          const body = Buffer.concat(chunks).toString("utf8");
          if (receiver.status >= 200 && receiver.status < 300)
            received.push({ path: req.url ?? "", headers: req.headers, body, event: JSON.parse(body) });
          res.writeHead(receiver.status, { "content-type": "text/plain" }).end("ok");
        });
      });
      await new Promise<void>((resolve) => s.listen(port, "127.0.0.1", resolve));
      port = (s.address() as AddressInfo).port;
      server = s;
    },
    async down() {
      const s = server;
      server = undefined;
      if (!s) return;
      s.closeAllConnections();
      await new Promise<void>((resolve) => s.close(() => resolve()));
    },
    close: () => receiver.down(),
  };
  await receiver.up();
  return receiver;
}
