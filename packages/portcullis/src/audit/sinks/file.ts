/**
 * Appends records as JSON lines (the `portcullis audit export` format) to a local file that a log
 * shipper picks up. The file is opened per batch, so a rename by logrotate starts a new file
 * instead of writing on into the rotated one.
 */
import { mkdir, open } from "node:fs/promises";
import { dirname } from "node:path";
import type { ExportedRecord } from "../chain.js";
import type { AuditSink } from "./types.js";

export class FileSink implements AuditSink {
  constructor(readonly name: string, readonly path: string) {}

  async deliver(records: ExportedRecord[]): Promise<void> {
    if (records.length === 0) return;
    const text = records.map((r) => `${JSON.stringify(r)}\n`).join("");
    // Audit records name who did what: owner-only, like the store. Modes apply on creation only.
    await mkdir(dirname(this.path), { recursive: true, mode: 0o700 });
    const fh = await open(this.path, "a", 0o600);
    try {
      const before = (await fh.stat()).size;
      try {
        await fh.writeFile(text, "utf8");
        // Durable before the cursor moves past these records.
        await fh.sync();
      } catch (err) {
        // Cut off a torn line (disk full mid-write) so the retry appends after whole lines only.
        await fh.truncate(before).catch(() => undefined);
        throw err;
      }
    } finally {
      await fh.close();
    }
  }

  async close(): Promise<void> {}
}
