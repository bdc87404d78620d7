/**
 * Files in data_dir that are created once and then only read: per-deployment secret keys and the
 * generated TLS pair. When two processes start at once, exactly one file wins (link() refuses to
 * replace) and both use it; nothing is ever half-written or swapped under a running gateway.
 */
import { randomBytes } from "node:crypto";
import { linkSync, mkdirSync, readFileSync, unlinkSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";

/** The file's content; when it does not exist yet, `create()` is written (mode 0600) and that is returned. */
export function readOrCreateFile(file: string, create: () => Buffer | string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
  }
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  const tmp = `${file}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`;
  writeFileSync(tmp, create(), { mode: 0o600 });
  try {
    // link() fails if another process created the file first: then everyone uses that one.
    linkSync(tmp, file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
  } finally {
    unlinkSync(tmp);
  }
  return readFileSync(file);
}

/** A random secret key kept in data_dir, created once. The masking `hash` strategy uses one. */
export function loadOrCreateKey(dataDir: string, name: string, bytes = 32): Buffer {
  return readOrCreateFile(`${dataDir}/${name}`, () => randomBytes(bytes));
}
