import { execFile } from "node:child_process";
import { readFileSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { expect, it } from "vitest";

// The bench harness in --smoke mode (tiny durations and sizes): every row of the table is there
// and every measured number is finite. Performance targets are reported by `npm run bench`, not
// asserted here: this 2-core machine is shared, and a slow CI run is not a broken harness. Every
// feature is built: a row without a number (say a 404 on /v1/usage or /webhooks/stripe) fails.
const ROWS = [
  "B1",
  "B2",
  "B3",
  "B4",
  "B5",
  "a1",
  "a2",
  "b1",
  "b2",
  "b3",
  "b4",
  "b5",
  "c1",
  "c2",
  "c3",
  "d1",
  "d2",
  "e1",
  "e2",
  "f1",
  "g1",
  "h1",
  "h2",
  "i1",
  "i2",
  "i3",
  "i4",
  "k1",
  "k2",
];

it(
  "npm run bench -- --smoke prints a table with every row and finite numbers",
  { timeout: 240_000 }, // about 65 s alone; a loaded 2-core machine can double that
  async () => {
    const json = path.join(os.tmpdir(), `meterline-bench-smoke-${process.pid}.json`);
    const { stdout } = await promisify(execFile)(
      process.execPath,
      ["--import", "tsx", "bench/run.ts", "--smoke", "--json", json],
      { cwd: path.resolve(import.meta.dirname, ".."), maxBuffer: 10 * 2 ** 20 },
    );
    const result = JSON.parse(readFileSync(json, "utf8")) as {
      rows: Array<{ id: string; value: number | null; note?: string; ratio?: number | null }>;
    };
    rmSync(json, { force: true });

    const byId = new Map(result.rows.map((r) => [r.id, r]));
    for (const id of ROWS) {
      const row = byId.get(id);
      expect(row, `row ${id}`).toBeDefined();
      expect(Number.isFinite(row!.value), `row ${id}: ${row!.note ?? row!.value}`).toBe(true);
      expect(stdout).toContain(`| ${id}. `);
    }
    for (const id of ["a1", "b1"]) expect(Number.isFinite(byId.get(id)!.ratio)).toBe(true);
    // The peer (section p) is measured only with --peer: its nine rows are there, n/a, saying so.
    for (let i = 1; i <= 9; i++) {
      const row = byId.get(`p${i}`);
      expect(row, `row p${i}`).toBeDefined();
      expect(row!.value).toBeNull();
      expect(row!.note).toMatch(/--peer/);
      expect(stdout).toMatch(new RegExp(`^\\| p${i}\\. .*\\| n/a \\|$`, "m"));
    }
    expect(stdout).toMatch(/^\| row \| value \| baseline \| ratio \| target \| result \|$/m);
  },
);
