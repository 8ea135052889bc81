import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { createCustomer } from "../src/billing/customers/customers.js";
import { grantCredits } from "../src/billing/credits/grants.js";
import { recordUsage } from "../src/billing/ledger/ledger.js";
import { calendarMonth } from "../src/billing/ledger/periods.js";
import { flushUsage } from "../src/billing/reporting/usage-flush.js";
import type { Db } from "../src/platform/db.js";
import { QUEUE, reportJobId } from "../src/queues/queues.js";
import { screenshotPath, useBrowser } from "./helpers/browser.js";
import { addUsage, linkedCustomer, useReportingStack } from "./helpers/reporting.js";
import { ADMIN_TOKEN, waitFor } from "./helpers/stack.js";

const { stack, emu } = useReportingStack();
const browser = useBrowser();
const HOUR = 3_600_000;

/** One ledger row written as the chat worker writes it, at `at`. */
const row = (
  db: Db,
  customerId: string,
  at: Date,
  o: { model: string; tokens: number; costMicros: number },
) =>
  recordUsage(db, {
    requestId: `chat_${randomBytes(12).toString("hex")}`,
    customerId,
    model: o.model,
    promptTokens: o.tokens - 10,
    cachedTokens: 0,
    cacheWriteTokens: 0,
    completionTokens: 10,
    reasoningTokens: 0,
    billableTokens: o.tokens,
    providerCostMicros: o.costMicros,
    priceMicros: o.costMicros,
    source: "provider",
    planId: "usage",
    pricing: { includedTokens: 0, overagePer1kMicros: 2_000 },
    createdAt: at,
  });

/** How many buckets of the raw ledger (not the rollup) have usage since `since`, per hour or day. */
async function ledgerBuckets(db: Db, unit: "hour" | "day", since: Date, customerId?: string) {
  const q = db("usage_events")
    .where("created_at", ">=", since)
    .countDistinct({ n: db.raw(`date_trunc('${unit}', created_at AT TIME ZONE 'UTC')`) });
  if (customerId) q.where({ customer_id: customerId });
  return Number((await q.first())!.n);
}

/** A stripe-report that met a Stripe 500 on every attempt: failed for good and dead-lettered. */
async function deadLetteredReport() {
  const c = await linkedCustomer(stack.db, emu);
  await addUsage(stack.db, c.customerId, 2, 35);
  emu.failNext(stack.config.reporting.attempts, 500, { path: "/v1/billing/meter_events" });
  const { reports } = await flushUsage(stack.web, { customerId: c.customerId });
  const letter = await waitFor(
    () =>
      stack
        .db("dead_letters")
        .where({ queue: QUEUE.stripeReport, job_id: reportJobId(reports[0]!.id) })
        .first(),
    { what: "the report's dead letter", timeoutMs: 40_000 },
  );
  return letter.id as number;
}

describe("the operator dashboard in Chromium", () => {
  it("asks for the admin token, for the page and its data", async () => {
    for (const path of ["/admin", "/admin/dashboard/data"]) {
      const res = await fetch(`${stack.url}${path}`);
      expect(res.status).toBe(401);
      expect(res.headers.get("www-authenticate")).toMatch(/^Basic/);
    }
  });

  it("plots every panel with one point per seeded bucket, marks the loss-maker, and redrives a dead letter", async () => {
    const now = new Date();
    const steady = await createCustomer(stack.db, { name: "Steady Co" });
    const lossy = await createCustomer(stack.db, { name: "Lossy Co" });
    for (const [ago, model] of [
      [0, "gpt-4o-mini"],
      [1, "gpt-4o"],
      [3, "gpt-4o-mini"],
      [30, "gpt-4o"],
      [24 * 5, "gpt-4o-mini"],
      [24 * 12, "gpt-4o"],
    ] as const) {
      await row(stack.db, steady.id, new Date(now.getTime() - ago * HOUR), {
        model,
        tokens: 5_000,
        costMicros: 100,
      });
    }
    // Lossy: 200 tokens bring 400 micros of revenue for 2,000 micros of provider cost.
    await row(stack.db, lossy.id, now, { model: "gpt-4o", tokens: 200, costMicros: 2_000 });
    await grantCredits(stack.db, { customerId: steady.id, source: "manual", amountMicros: 5_000_000 });
    const letterId = await deadLetteredReport();

    const page = await (await browser.context({ adminToken: ADMIN_TOKEN })).newPage();
    await page.goto(`${stack.url}/admin`);
    await page.waitForSelector("body[data-loaded]");
    const points = async (id: string) => Number(await page.getAttribute(`#${id}`, "data-points"));

    const hourStart = new Date(Math.floor(Date.now() / HOUR) * HOUR - 47 * HOUR);
    const today = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate()));
    const dayStart = new Date(today.getTime() - 29 * 24 * HOUR);
    const hours = await ledgerBuckets(stack.db, "hour", hourStart);
    expect(hours).toBeGreaterThanOrEqual(4);
    expect(await points("plot-usage-hourly")).toBe(hours);
    expect(await points("plot-requests-hourly")).toBe(hours);
    expect(await points("plot-usage-daily")).toBe(await ledgerBuckets(stack.db, "day", dayStart));
    const month = calendarMonth(now);
    const billed = await stack
      .db("usage_events")
      .where("created_at", ">=", month.start)
      .countDistinct({ n: "customer_id" });
    expect(await points("plot-profitability")).toBe(Number(billed[0]!.n));
    expect(await points("plot-queues")).toBe(stack.web.queues.all.length);
    expect(await points("plot-credits")).toBe(1);
    // Every plot with points drew a uPlot canvas.
    expect(await page.locator(".uplot canvas").count()).toBe(6);

    await expect(
      page.locator(`#profitability tr[data-customer="${lossy.id}"]`).getAttribute("class"),
    ).resolves.toBe("flagged");
    await expect(
      page.locator(`#profitability tr[data-customer="${steady.id}"]`).getAttribute("class"),
    ).resolves.toBe("");
    expect(await page.textContent("#report-counts")).toMatch(/^0\s*0\s*1/);

    // One customer's usage: the hourly plot follows the selection.
    await page.selectOption("#customer", lossy.id);
    await page.waitForSelector('#plot-usage-hourly[data-points="1"]');

    await page.screenshot({ path: screenshotPath("dashboard"), fullPage: true });
    await page.click(`#dl-${letterId} button.redrive`);
    await page.waitForSelector(`#dl-${letterId}[data-redrive="retried"]`);
    // The redriven report is sent (Stripe answers now); its dead letter resolves and leaves the list.
    await page.waitForSelector(`#dl-${letterId}`, { state: "detached", timeout: 20_000 });
    const letter = await stack.db("dead_letters").where({ id: letterId }).first();
    expect(letter.resolved_at).toBeInstanceOf(Date);
    expect(letter.redrive_count).toBe(1);
    await page.waitForFunction('/^0\\s*1\\s*0/.test(document.getElementById("report-counts").textContent)');
    await page.context().close();
  }, 120_000);

  it("is linked from Bull Board", async () => {
    const page = await (await browser.context({ adminToken: ADMIN_TOKEN })).newPage();
    await page.goto(`${stack.url}/admin/queues`);
    // Bull Board lists its links in the header's last menu.
    await page.locator('ul[class*="actions"] > li').last().locator("button").click();
    await page.getByText("Dashboard", { exact: true }).click();
    await page.waitForSelector("body[data-loaded]");
    expect(new URL(page.url()).pathname).toBe("/admin");
    await page.context().close();
  }, 90_000);
});
