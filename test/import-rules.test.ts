import { ESLint } from "eslint";
import { describe, expect, it } from "vitest";

// The import direction of ARCHITECTURE.md, checked through the project's own lint config: a file at
// `path` importing `specifier` is refused (or not) by `npm run lint`.
const eslint = new ESLint();
async function refused(path: string, specifier: string): Promise<boolean> {
  const code = `import * as probe from "${specifier}";\nexport const used = probe;\n`;
  const [result] = await eslint.lintText(code, { filePath: path });
  return result!.messages.some((m) => m.ruleId === "no-restricted-imports");
}

describe("import rules", () => {
  it.each([
    ["src/billing/ledger/probe.ts", "../../api/app.js"],
    ["src/billing/ledger/probe.ts", "../../../jobs/worker.js"],
    ["src/llm/probe.ts", "bullmq"],
    ["src/notifications/probe.ts", "bullmq"],
    ["src/notifications/probe.ts", "../api/app.js"],
    ["src/chat/probe.ts", "../local/start.js"],
    ["src/api/chat/probe.ts", "../../../jobs/chat.js"],
    ["src/queues/probe.ts", "../api/app.js"],
    ["jobs/probe.ts", "../src/local/services.js"],
    ["jobs/probe.ts", "../src/api/app.js"],
  ])("refuses %s importing %s", async (path, specifier) => {
    expect(await refused(path, specifier)).toBe(true);
  });

  it.each([
    ["src/api/chat/probe.ts", "../../billing/pricing/prices.js"],
    ["src/queues/probe.ts", "bullmq"],
    ["jobs/probe.ts", "../src/billing/ledger/ledger.js"],
    ["src/server.ts", "./api/listen.js"],
    ["src/local/probe.ts", "../../jobs/worker.js"],
    ["src/billing/customers/probe.ts", "./api-keys.js"],
  ])("allows %s importing %s", async (path, specifier) => {
    expect(await refused(path, specifier)).toBe(false);
  });
});
