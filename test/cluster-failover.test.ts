import { describe, expect, it } from "vitest";
import { queuePrefix, QUEUE } from "../src/queues/queues.js";
import { ask, useStack, waitFor, type ChatAnswer } from "./helpers/stack.js";

// Three masters with one replica each, so a master can hand its slots to its replica mid-run.
const stack = useStack({ redis: "cluster-replicas", emulator: { latencyMs: 50 } });

describe("a Redis Cluster failover", () => {
  it("moves the chat queue's master to its replica mid-run: chats keep being answered, each accepted chat has one usage row", async () => {
    const { customerId, key } = await stack.customer();
    const answers: Array<ChatAnswer & { afterFailover: boolean }> = [];
    let failedOver = false;
    let stop = false;
    const client = async (n: number) => {
      for (let i = 0; !stop; i++) {
        const answer = await stack.chat(key, ask(`client ${n} chat ${i}`));
        answers.push({ ...answer, afterFailover: failedOver });
      }
    };
    const clients = [1, 2, 3, 4].map(client);

    await waitFor(() => answers.filter((a) => a.status === 200).length >= 10, {
      timeoutMs: 30_000,
      what: "10 chats before the failover",
    });
    const moved = await stack.redisCluster.failover(
      `${queuePrefix(stack.config.queuePrefix, QUEUE.chat)}:id`,
    );
    failedOver = true;
    await waitFor(() => answers.filter((a) => a.afterFailover && a.status === 200).length >= 20, {
      timeoutMs: 60_000,
      what: "20 chats answered after the failover",
    });
    stop = true;
    await Promise.all(clients);

    expect(moved.to).not.toBe(moved.from);
    // Accepted: answered, or turned into 202 (answered later). A refusal (503) is allowed; a loss is not.
    const accepted = answers.filter((a) => a.status === 200 || a.status === 202).map((a) => a.requestId!);
    const refused = answers.filter((a) => a.status !== 200 && a.status !== 202);
    expect(refused.every((a) => a.status === 503)).toBe(true);
    const rows = await waitFor(
      async () => {
        const found = await stack.db("usage_events").where({ customer_id: customerId }).select("request_id");
        return found.length >= accepted.length ? found : undefined;
      },
      { timeoutMs: 30_000, what: "a usage row for every accepted chat" },
    );
    expect(rows.map((r) => r.request_id).sort()).toEqual([...accepted].sort());
    console.info(
      `failover ${moved.from} → ${moved.to}: ${accepted.length} chats accepted, ${refused.length} refused (503)`,
    );
  });
});
