import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { expect } from "vitest";
import type { Config } from "../../src/config.js";

export type CliRun = { stdout: string; stderr: string; code: number };

/** Runs `npm run cli -- …` as the product does (tsx on src/cli.ts), against a stack's database and Redis. */
export async function runCli(config: Config, ...args: string[]): Promise<CliRun> {
  const env = {
    ...process.env,
    DATABASE_URL: config.databaseUrl,
    REDIS_URL: config.redisUrl,
    QUEUE_PREFIX: config.queuePrefix,
    LOG_LEVEL: "silent",
    // Portal links are signed with a key derived from it.
    ...(config.adminToken ? { ADMIN_TOKEN: config.adminToken } : {}),
  };
  try {
    const { stdout, stderr } = await promisify(execFile)(
      process.execPath,
      ["--import", "tsx", "src/cli.ts", ...args],
      { env, timeout: 60_000 },
    );
    return { stdout, stderr, code: 0 };
  } catch (err) {
    const e = err as { stdout: string; stderr: string; code: number };
    return { stdout: e.stdout, stderr: e.stderr, code: e.code };
  }
}

/** Runs a command with `--json`: fails the test on a non-zero exit, answers the parsed output. */
export async function runCliJson(config: Config, ...args: string[]): Promise<unknown> {
  const run = await runCli(config, ...args, "--json");
  expect(run, run.stderr).toMatchObject({ code: 0 });
  return JSON.parse(run.stdout) as unknown;
}
