import { loadConfig } from "../config.js";
import { ConfigError, NotFoundError, UsageError } from "../errors.js";
import { COMMANDS } from "./commands.js";
import { createCliContext, parseFlags, type CliIo } from "./context.js";

function help(): string {
  return [
    "usage: npm run cli -- <command> [--json]",
    "",
    ...Object.values(COMMANDS).map((c) => `  ${c.usage}`),
  ].join("\n");
}

/**
 * Runs one admin command (`argv` without node and the script) and answers its exit code: 0 done,
 * 1 not found or not set up, 2 bad usage, 3 reconciliation drift. Errors it cannot explain are
 * thrown, so the process entry point crashes with their stack.
 */
export async function runCommand(argv: string[], io: CliIo): Promise<number> {
  const [name, ...rest] = argv;
  const command = name ? COMMANDS[name] : undefined;
  if (!command) {
    const asked = name === "help" || name === "--help";
    io.stderr(`${name && !asked ? `unknown command: ${name}\n\n` : ""}${help()}\n`);
    return asked ? 0 : 2;
  }

  let config;
  try {
    config = loadConfig(io.env);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    io.stderr(`meterline: ${err.message}\n`);
    return 1;
  }
  const parsed = parseFlags(rest);
  const ctx = createCliContext(config, parsed.flags, parsed.args, io);
  try {
    await command.run(ctx);
    return ctx.exitCode;
  } catch (err) {
    if (err instanceof UsageError) {
      io.stderr(`${err.message}\nusage: npm run cli -- ${command.usage}\n`);
      return 2;
    }
    if (err instanceof NotFoundError) {
      io.stderr(`${err.message}\n`);
      return 1;
    }
    if ((err as { code?: string }).code === "42P01") {
      io.stderr("The database has no meterline schema yet: run `npm run migrate` first.\n");
      return 1;
    }
    throw err;
  } finally {
    await ctx.close();
  }
}
