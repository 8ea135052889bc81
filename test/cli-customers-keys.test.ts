import { describe, expect, it } from "vitest";
import { KEY_CACHE_TTL_MS } from "../src/billing/customers/key-cache.js";
import { runCli, runCliJson, spawnCli } from "./helpers/cli.js";
import { useStack, waitFor } from "./helpers/stack.js";

const stack = useStack();

const cli = (...args: string[]) => runCli(stack.config, ...args);
const json = (...args: string[]) => runCliJson(stack.config, ...args);

const chat = (key: string) =>
  fetch(`${stack.url}/v1/chat/completions`, {
    method: "POST",
    headers: { authorization: `Bearer ${key}`, "content-type": "application/json", prefer: "respond-async" },
    body: JSON.stringify({ model: "gpt-4o-mini", messages: [{ role: "user", content: "hi" }] }),
  });

describe("CLI customers:list, keys:list, keys:revoke", () => {
  it("lists customers and keys without secrets; a revoked key gets 401 within the bound the command states", async () => {
    const { customerId, key, keyId } = await stack.customer();
    await stack.db("customers").where({ id: customerId }).update({ email: "ops@listed.test" });
    expect((await chat(key)).status).toBe(202);
    await waitFor(() => stack.db("api_keys").where({ id: keyId }).whereNotNull("last_used_at").first(), {
      what: "the key's last use",
    });

    const customers = (await json("customers:list")) as Array<Record<string, unknown>>;
    expect(customers).toContainEqual(
      expect.objectContaining({ id: customerId, email: "ops@listed.test", status: "active" }),
    );
    const listed = await cli("keys:list", "--customer", customerId);
    expect(listed.code).toBe(0);
    expect(listed.stdout).toMatch(
      new RegExp(`^\\s*${keyId}  ${key.slice(0, 11)}…  ${customerId}  .*  active$`, "m"),
    );
    expect(listed.stdout).not.toContain(key);

    // The key was just used, so the web process holds it in its cache.
    const revoke = await cli("keys:revoke", String(keyId));
    expect(revoke.code).toBe(0);
    expect(revoke.stdout).toContain(`revoked key ${keyId}`);
    expect(revoke.stdout).toContain(`within ${KEY_CACHE_TTL_MS / 1000} s`);
    await waitFor(async () => (await chat(key)).status === 401, {
      timeoutMs: KEY_CACHE_TTL_MS + 1_000,
      intervalMs: 100,
      what: "the revoked key's 401",
    });
    const keys = (await json("keys:list", "--customer", customerId)) as unknown[];
    expect(keys).toEqual([
      {
        id: keyId,
        prefix: key.slice(0, 11),
        customerId,
        createdAt: expect.any(String),
        lastUsedAt: expect.any(String),
        revokedAt: expect.any(String),
      },
    ]);
    expect(JSON.stringify(keys)).not.toContain(key);
  });

  it("revokes again without harm and refuses an unknown or missing key id", async () => {
    const { keyId } = await stack.customer();
    await json("keys:revoke", String(keyId));
    expect(await json("keys:revoke", String(keyId))).toMatchObject({ id: keyId, alreadyRevoked: true });
    const unknown = await cli("keys:revoke", "999999");
    expect(unknown).toMatchObject({ code: 1, stderr: expect.stringContaining("no API key 999999") });
    const missing = await cli("keys:revoke");
    expect(missing).toMatchObject({ code: 2, stderr: expect.stringContaining("keys:revoke <key id>") });
  });
});

describe("the `npm run cli` process", () => {
  it("prints a command's JSON and exits 0; exits 2 with the usage for an unknown command", async () => {
    const { customerId } = await stack.customer();
    const listed = await spawnCli(stack.config, "customers:list", "--json");
    expect(listed, listed.stderr).toMatchObject({ code: 0 });
    expect(JSON.parse(listed.stdout)).toContainEqual(expect.objectContaining({ id: customerId }));

    const unknown = await spawnCli(stack.config, "customers:frobnicate");
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain("unknown command: customers:frobnicate");
    expect(unknown.stderr).toContain("keys:revoke <key id>");
  }, 120_000);

  it("names the invalid variable and exits 1 when the configuration is bad", async () => {
    const run = await runCli({ ...stack.config, queuePrefix: "no spaces allowed" }, "customers:list");
    expect(run.code).toBe(1);
    expect(run.stderr).toContain("QUEUE_PREFIX");
  });
});
