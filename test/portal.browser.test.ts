import { describe, expect, it } from "vitest";
import { portalQuery, portalSecret, signPortalLink } from "../src/billing/customers/portal-links.js";
import { screenshotPath, useBrowser } from "./helpers/browser.js";
import { runCliJson } from "./helpers/cli.js";
import { ADMIN_TOKEN, ask, useStack } from "./helpers/stack.js";

const stack = useStack({ env: { PORTAL_FRAME_ANCESTORS: "https://app.example.com" } });
const browser = useBrowser();

/** POST /admin/customers/{id}/portal-sessions as the operator. */
async function portalSession(customerId: string) {
  const res = await fetch(`${stack.url}/admin/customers/${customerId}/portal-sessions`, {
    method: "POST",
    headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
  });
  return { status: res.status, body: (await res.json()) as Record<string, string> };
}

describe("the customer portal", () => {
  it("shows the customer's own numbers, the same as GET /v1/usage, from a one-hour link", async () => {
    const c = await stack.customer({ planId: "usage" });
    for (let i = 0; i < 3; i++) expect((await stack.chat(c.key, ask(`question ${i}`))).status).toBe(200);
    const usage = (await (
      await fetch(`${stack.url}/v1/usage`, { headers: { authorization: `Bearer ${c.key}` } })
    ).json()) as { tokens: { billable_tokens: number; requests: number }; charges: { total_micros: number } };
    expect(usage.tokens.requests).toBe(3);

    const session = await portalSession(c.customerId);
    expect(session.status).toBe(201);
    const expiresIn = Date.parse(session.body.expires_at!) - Date.now();
    expect(expiresIn).toBeGreaterThan(59 * 60_000);
    expect(expiresIn).toBeLessThanOrEqual(60 * 60_000);

    const data = await fetch(session.body.data_url!);
    expect(data.status).toBe(200);
    expect(await data.json()).toMatchObject({
      object: "portal.data",
      customer: { id: c.customerId },
      tokens: usage.tokens,
      charges: usage.charges,
      by_day: [{ requests: 3, billable_tokens: usage.tokens.billable_tokens }],
      invoice_preview: { source: "meterline", total_micros: usage.charges.total_micros },
      api_keys: [{ prefix: c.key.slice(0, 11) }],
    });

    const page = await (await browser.context()).newPage();
    const res = await page.goto(session.body.url!);
    expect(res?.status()).toBe(200);
    expect(res?.headers()["content-security-policy"]).toBe("frame-ancestors https://app.example.com");
    expect((await page.textContent("#period-tokens"))!.replace(/,/g, "")).toBe(
      String(usage.tokens.billable_tokens),
    );
    expect(await page.textContent("#period-requests")).toBe("3");
    expect(await page.getAttribute("#plot-days", "data-points")).toBe("1");
    expect(await page.locator("#plot-days canvas").count()).toBeGreaterThan(0);
    expect(await page.textContent("#api-keys")).toContain(c.key.slice(0, 11));
    // The key was used by the chats: its last use is shown, not "never".
    expect(await page.textContent("#api-keys")).not.toContain("never");
    await page.screenshot({ path: screenshotPath("portal"), fullPage: true });
    await page.context().close();
  }, 60_000);

  it("refuses an expired, tampered or re-pointed link with a 403 page", async () => {
    const a = await stack.customer();
    const b = await stack.customer();
    const secret = portalSecret(stack.config)!;
    const good = new URL((await portalSession(a.customerId)).body.url!);
    const expired = portalQuery(signPortalLink(secret, a.customerId, new Date(Date.now() - 2 * 3_600_000)));
    const tampered = new URLSearchParams(good.search);
    const sig = tampered.get("signature")!;
    tampered.set("signature", (sig[0] === "A" ? "B" : "A") + sig.slice(1));
    const repointed = new URLSearchParams(good.search);
    repointed.set("customer", b.customerId);
    const later = new URLSearchParams(good.search);
    later.set("expires", String(Number(later.get("expires")) + 86_400));

    const page = await (await browser.context()).newPage();
    for (const [query, message] of [
      [expired, "expired"],
      [tampered.toString(), "signature"],
      [repointed.toString(), "signature"],
      [later.toString(), "signature"],
      ["customer=" + a.customerId, "incomplete"],
    ] as const) {
      const res = await page.goto(`${stack.url}/portal?${query}`);
      expect(res?.status(), query).toBe(403);
      expect(await page.textContent("#refused")).toContain(message);
      const data = await fetch(`${stack.url}/portal/data?${query}`);
      expect(data.status).toBe(403);
      expect(await data.json()).toMatchObject({ error: { type: "permission_error" } });
    }
    await page.context().close();
  }, 60_000);

  it("answers 404 for a portal session of an unknown customer", async () => {
    const res = await portalSession("cus_nobody");
    expect(res).toMatchObject({ status: 404, body: { error: { type: "not_found_error" } } });
  });
});

describe("CLI customers:portal", () => {
  it("prints a signed link that opens the customer's portal", async () => {
    const c = await stack.customer();
    const session = (await runCliJson(stack.config, "customers:portal", "--customer", c.customerId)) as {
      url: string;
      expires_at: string;
    };
    expect(Date.parse(session.expires_at)).toBeGreaterThan(Date.now() + 59 * 60_000);
    // The CLI does not know the test server's port: the same path and query on it.
    const url = new URL(session.url);
    const res = await fetch(`${stack.url}/portal/data${url.search}`);
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ customer: { id: c.customerId } });
  }, 180_000);
});
