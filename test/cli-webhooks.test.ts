import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { verifySignature } from "../src/notifications/signature.js";
import { runCli } from "./helpers/cli.js";
import { useStack, waitFor } from "./helpers/stack.js";
import { startReceiver } from "./helpers/webhook-receiver.js";

const stack = useStack();
let receiver: Awaited<ReturnType<typeof startReceiver>>;
beforeAll(async () => {
  receiver = await startReceiver();
});
afterAll(async () => {
  await receiver.close();
});

const cli = (...args: string[]) => runCli(stack.config, ...args);
const json = async <T>(...args: string[]): Promise<T> => {
  const run = await cli(...args, "--json");
  expect(run, run.stderr).toMatchObject({ code: 0 });
  return JSON.parse(run.stdout) as T;
};

describe("CLI webhooks:*", () => {
  it("adds an endpoint (secret shown once), lists it, sends it webhook.test and shows the delivery", async () => {
    const added = await json<{ id: string; secret: string }>(
      "webhooks:add",
      "--url",
      receiver.url("/cli"),
      "--events",
      "usage.threshold_reached,credits.low",
    );
    expect(added.secret).toMatch(/^whsec_[0-9a-f]{64}$/);

    const listed = await cli("webhooks:list");
    expect(listed.stdout).toContain(added.id);
    expect(listed.stdout).toContain("usage.threshold_reached,credits.low");
    expect(listed.stdout).not.toContain(added.secret);

    // webhook.test reaches an endpoint whatever its filter.
    const sent = await json<{ eventId: string; deliveries: string[] }>(
      "webhooks:test",
      "--endpoint",
      added.id,
    );
    expect(sent.deliveries).toHaveLength(1);
    const [got] = await waitFor(() => (receiver.received.length ? receiver.received : undefined));
    expect(got!.event).toMatchObject({ id: sent.eventId, type: "webhook.test" });
    expect(verifySignature(got!.headers["meterline-signature"] as string, got!.body, added.secret)).toBe(
      true,
    );

    await waitFor(
      async () =>
        (await stack.db("webhook_deliveries").where({ id: sent.deliveries[0] }).first())?.status ===
        "delivered",
    );
    const log = await json<Array<{ id: string; status: string }>>(
      "webhooks:deliveries",
      "--endpoint",
      added.id,
      "--status",
      "delivered",
    );
    expect(log).toEqual([expect.objectContaining({ id: sent.deliveries[0], status: "delivered" })]);
  });

  it("refuses a bad URL, an unknown endpoint and an unknown status with a clear message", async () => {
    expect(await cli("webhooks:add", "--url", "not a url")).toMatchObject({
      code: 2,
      stderr: expect.stringContaining("http:// or https://"),
    });
    expect(await cli("webhooks:test", "--endpoint", "we_missing")).toMatchObject({
      code: 1,
      stderr: expect.stringContaining("no webhook endpoint we_missing"),
    });
    expect(await cli("webhooks:deliveries", "--status", "lost")).toMatchObject({ code: 2 });
  });
});
