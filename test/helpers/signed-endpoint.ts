import { createServer } from "node:http";
import type { AddressInfo } from "node:net";

export interface SignedDelivery {
  body: string;
  signature: string;
}

/**
 * A webhook endpoint for the Stripe emulator to deliver to: records each raw body with its
 * `Stripe-Signature` header (what `stripe.webhooks.constructEvent` verifies) and answers 200.
 */
export async function startSignedEndpoint(): Promise<{
  url: string;
  received: SignedDelivery[];
  close(): Promise<void>;
}> {
  const received: SignedDelivery[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      received.push({
        body: Buffer.concat(chunks).toString("utf8"),
        signature: String(req.headers["stripe-signature"]),
      });
      res.writeHead(200).end("ok");
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/webhooks/stripe`,
    received,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}
