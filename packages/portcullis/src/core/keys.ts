/**
 * Per-deployment secret keys kept in data_dir (mode 0600), created once. The masking `hash`
 * strategy uses one, so hashed values stay joinable across sessions and restarts but cannot be
 * recomputed by anyone without the file.
 */
import { randomBytes } from "node:crypto";
import { linkSync, mkdirSync, readFileSync, unlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";

export function loadOrCreateKey(dataDir: string, name: string, bytes = 32): Buffer {
  const file = join(dataDir, name);
  try {
    return readFileSync(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
  }
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, randomBytes(bytes), { mode: 0o600 });
  try {
    // link() fails if another process created the key first: then everyone uses that one.
    linkSync(tmp, file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
  } finally {
    unlinkSync(tmp);
  }
  return readFileSync(file);
}
