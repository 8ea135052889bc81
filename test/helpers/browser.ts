import { chromium, type Browser, type BrowserContext } from "playwright-core";
import { afterAll, beforeAll } from "vitest";

/** The distribution's Chromium (`.ci/run` installs it when missing). */
export const CHROMIUM_PATH = "/usr/bin/chromium";

/** Where to write the README's screenshots: `SCREENSHOTS=1` when regenerating them, else nowhere. */
export const screenshotPath = (name: string) => (process.env.SCREENSHOTS ? `docs/${name}.png` : undefined);

/**
 * One headless Chromium for a test file (launched in beforeAll, closed in afterAll) and a fresh
 * context per call, with admin credentials when given.
 */
export function useBrowser(): { context(opts?: { adminToken?: string }): Promise<BrowserContext> } {
  let browser: Browser | undefined;
  beforeAll(async () => {
    browser = await chromium.launch({
      executablePath: CHROMIUM_PATH,
      headless: true,
      args: [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
      ],
    });
  });
  afterAll(async () => {
    await browser?.close();
  });
  return {
    context: (opts = {}) =>
      browser!.newContext({
        viewport: { width: 1280, height: 1100 },
        ...(opts.adminToken ? { httpCredentials: { username: "admin", password: opts.adminToken } } : {}),
      }),
  };
}
