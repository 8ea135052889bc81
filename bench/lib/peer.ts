import { execFile } from "node:child_process";
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { freePort, waitForHttp, type Child, type Children } from "./children.js";
import { PEER_VERSION } from "./options.js";

const PACKAGE = "@portkey-ai/gateway";

/**
 * Portkey's open-source gateway at the pinned version, installed with npm into a folder under the
 * OS temp directory (not a dependency of meterline; kept there for the next run of the same
 * version) and started as a child process on a free port. Its Node entry is build/start-server.js,
 * which reads `--port=<n>` (the `=` form only) and, with `--headless` and NODE_ENV=production, skips
 * its log console. A request names its upstream with `x-portkey-provider` and
 * `x-portkey-custom-host` (127.0.0.1 is among its default trusted custom hosts).
 */
export async function startPortkey(
  children: Children,
  log: (message: string) => void,
): Promise<{ url: string; child: Child; upstreamHeaders(llmUrl: string): Record<string, string> }> {
  const dir = path.join(os.tmpdir(), `meterline-bench-peer-portkey-${PEER_VERSION}`);
  const pkg = path.join(dir, "node_modules", PACKAGE);
  const installed = () =>
    existsSync(path.join(pkg, "package.json")) &&
    (JSON.parse(readFileSync(path.join(pkg, "package.json"), "utf8")) as { version?: string }).version ===
      PEER_VERSION;
  if (!installed()) {
    log(`p. npm install --prefix ${dir} ${PACKAGE}@${PEER_VERSION}`);
    mkdirSync(dir, { recursive: true });
    await promisify(execFile)(
      "npm",
      ["install", "--prefix", dir, `${PACKAGE}@${PEER_VERSION}`, "--no-audit", "--no-fund"],
      { timeout: 300_000 },
    );
    if (!installed()) throw new Error(`${PACKAGE}@${PEER_VERSION} is not in ${dir} after npm install`);
  }
  const port = await freePort();
  const child = children.exec(
    "portkey",
    process.execPath,
    [path.join(pkg, "build", "start-server.js"), `--port=${port}`, "--headless"],
    { NODE_ENV: "production" },
    dir,
  );
  const url = `http://127.0.0.1:${port}`;
  await waitForHttp(`${url}/`, child);
  return {
    url,
    child,
    upstreamHeaders: (llmUrl) => ({ "x-portkey-provider": "openai", "x-portkey-custom-host": llmUrl }),
  };
}
