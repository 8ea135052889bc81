import { mkdtempSync } from "node:fs";
import os from "node:os";
import path from "node:path";

export { startRedisServer, type RedisServerHandle } from "../../src/local/redis-server.js";

/** A fresh, empty directory under os.tmpdir() (mode 0700; the caller removes it). */
export function tempDir(prefix: string): string {
  return mkdtempSync(path.join(os.tmpdir(), `${prefix.replace(/[^\w.-]/g, "_")}-`));
}
