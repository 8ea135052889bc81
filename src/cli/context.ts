import type { Config } from "../config.js";
import { createDeps, type Deps } from "../deps.js";
import { installPriceOverrides } from "../billing/pricing/prices.js";
import type { Db } from "../platform/db.js";
import { UsageError } from "../errors.js";

/**
 * What a CLI command gets: parsed flags, positionals, and the composition root's deps, opened on
 * first use and closed after the command. A command passes on only the part it uses.
 */
export interface CliContext {
  flags: Record<string, string | boolean | undefined>;
  args: string[];
  json: boolean;
  config: Config;
  deps(): Deps;
  db(): Db;
  print(human: string, data: unknown): void;
  /** The process's exit code once the command returns; a command sets it to report an outcome. */
  exitCode: number;
  close(): Promise<void>;
}

/** Where a command runs: its environment and its output streams (the process's, or a test's). */
export interface CliIo {
  env: Record<string, string | undefined>;
  stdout(text: string): void;
  stderr(text: string): void;
}

export function createCliContext(
  config: Config,
  flags: CliContext["flags"],
  args: string[],
  io: Pick<CliIo, "stdout">,
): CliContext {
  // Commands that price without opening deps (pricing:quote) see the overrides too.
  installPriceOverrides(config.priceOverrides);
  const json = flags.json === true;
  let deps: Deps | undefined;
  // Commands print their own results; the logger stays silent.
  const open = () => (deps ??= createDeps({ ...config, logLevel: "silent" }, "cli"));
  return {
    flags,
    args,
    json,
    config,
    deps: open,
    db: () => open().db,
    print(human, data) {
      io.stdout(json ? `${JSON.stringify(data, null, 2)}\n` : `${human}\n`);
    },
    exitCode: 0,
    async close() {
      await deps?.close();
    },
  };
}

export function requireFlag(ctx: CliContext, name: string): string {
  const value = ctx.flags[name];
  if (typeof value !== "string" || value === "") throw new UsageError(`--${name} is required`);
  return value;
}

export function optionalFlag(ctx: CliContext, name: string): string | undefined {
  const value = ctx.flags[name];
  return typeof value === "string" && value !== "" ? value : undefined;
}

const BOOLEAN_FLAGS = new Set(["json", "failed", "all", "dry-run"]);

/** `--key value`, `--key=value`, bare `--flag` (true), and positionals. */
export function parseFlags(argv: string[]): { flags: CliContext["flags"]; args: string[] } {
  const flags: CliContext["flags"] = {};
  const args: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const token = argv[i]!;
    if (!token.startsWith("--")) {
      args.push(token);
      continue;
    }
    const eq = token.indexOf("=");
    if (eq > 0) {
      flags[token.slice(2, eq)] = token.slice(eq + 1);
    } else if (
      !BOOLEAN_FLAGS.has(token.slice(2)) &&
      argv[i + 1] !== undefined &&
      !argv[i + 1]!.startsWith("--")
    ) {
      flags[token.slice(2)] = argv[++i]!;
    } else {
      flags[token.slice(2)] = true;
    }
  }
  return { flags, args };
}
