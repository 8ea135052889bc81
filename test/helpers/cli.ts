import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { expect } from "vitest";
import type { Config } from "../../src/config.js";
import { runCommand } from "../../src/cli/main.js";

export type CliRun = { stdout: string; stderr: string; code: number };

/** The environment `npm run cli` would get to reach a stack's database and Redis. */
function cliEnv(config: Config): Record<string, string | undefined> {
  return {
    ...process.env,
    DATABASE_URL: config.databaseUrl,
    REDIS_URL: config.redisUrl,
    QUEUE_PREFIX: config.queuePrefix,
    LOG_LEVEL: "silent",
    // Portal links are signed with a key derived from it.
    ...(config.adminToken ? { ADMIN_TOKEN: config.adminToken } : {}),
  };
}

/**
 * Runs an admin command against a stack, in this process: the same entry (`runCommand`) that
 * src/cli.ts calls, with its output captured. An error the CLI cannot explain fails the run with
 * exit code 1 and its stack on stderr, as the process would. (A process per command would spend
 * seconds compiling TypeScript each time; `spawnCli` runs the real process where that matters.)
 */
export async function runCli(config: Config, ...args: string[]): Promise<CliRun> {
  let stdout = "";
  let stderr = "";
  try {
    const code = await runCommand(args, {
      env: cliEnv(config),
      stdout: (text) => void (stdout += text),
      stderr: (text) => void (stderr += text),
    });
    return { stdout, stderr, code };
  } catch (err) {
    return { stdout, stderr: `${stderr}${(err as Error).stack ?? String(err)}\n`, code: 1 };
  }
}

/** Runs `npm run cli -- …` as the product does: tsx on src/cli.ts, as its own process. */
export async function spawnCli(config: Config, ...args: string[]): Promise<CliRun> {
  try {
    const { stdout, stderr } = await promisify(execFile)(
      process.execPath,
      ["--import", "tsx", "src/cli.ts", ...args],
      { env: cliEnv(config), timeout: 60_000 },
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
