import type { BenchEnvironment } from "./environment.js";
import type { BenchOptions } from "./options.js";
import type { Stack } from "./stack.js";
import type { Row } from "./table.js";

/** What every section gets: the options, the run's environment and processes, and earlier rows. */
export interface BenchContext {
  options: BenchOptions;
  env: BenchEnvironment;
  stack: Stack;
  /** A row measured earlier in this run (baselines run first). */
  row(id: string): Row | undefined;
  log(message: string): void;
}

export type Section = (ctx: BenchContext) => Promise<Row[]>;

export const ms = (n: number) => `${n.toFixed(n < 10 ? 2 : 1)} ms`;
