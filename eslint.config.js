import js from "@eslint/js";
import tseslint from "typescript-eslint";

// The import direction (ARCHITECTURE.md): entry points and adapters depend on the domain, never the
// reverse. Imports are relative, so a forbidden folder shows as a path segment of the specifier.
const segment = (folder) => `(^|/)${folder}/`;
const forbid = (folder, why) => ({ regex: segment(folder), message: why });
const noLocal = forbid("local", "only the launcher (src/local/), tests and bench import src/local/.");
const noJobs = forbid(
  "jobs",
  "only the worker entry (jobs/worker.ts) wires processors; src/ never imports jobs/.",
);
const noApi = forbid("api", "src/api/ is the HTTP adapter: only src/server.ts and tests import it.");
const noBullmq = {
  name: "bullmq",
  message:
    "domain code is queue-agnostic: throw PermanentError/RetryableError; src/queues/ and jobs/ speak BullMQ.",
};
const restrict = (files, patterns, paths = []) => ({
  files,
  rules: { "no-restricted-imports": ["error", { paths, patterns }] },
});

export default tseslint.config(
  { ignores: ["dist/", ".bench-dist/", "node_modules/", ".data/", "coverage/"] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
      "no-console": "off",
    },
  },
  // Later entries override earlier ones for the files they name.
  restrict(["src/**/*.ts"], [noLocal, noJobs, noApi]),
  restrict(
    ["src/billing/**/*.ts", "src/llm/**/*.ts", "src/chat/**/*.ts", "src/notifications/**/*.ts"],
    [noLocal, noJobs, noApi],
    [noBullmq],
  ),
  restrict(["src/api/**/*.ts", "src/server.ts"], [noLocal, noJobs]),
  restrict(["jobs/**/*.ts"], [noLocal, noApi]),
  restrict(["src/local/**/*.ts"], []),
);
