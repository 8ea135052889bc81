import { defineConfig } from "vitest/config";

// Tests that measure the event loop's delay run last and alone: the rest of the suite on the same
// two cores would otherwise be what they measure.
const LOOP_DELAY = ["test/estimate-bounded.test.ts"];

export default defineConfig({
  test: {
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: "forks",
    maxWorkers: 2,
    projects: [
      {
        extends: true,
        test: { name: "suite", include: ["test/**/*.test.ts"], exclude: LOOP_DELAY },
      },
      {
        extends: true,
        test: { name: "loop-delay", include: LOOP_DELAY, sequence: { groupOrder: 1 } },
      },
    ],
  },
});
