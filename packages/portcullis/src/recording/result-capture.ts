/**
 * The rows of one result as the recording keeps them: decoded while under the per-operation and
 * per-session caps, then only counted and hashed. The hash covers every row's wire bytes, so a
 * responder can prove what left even where the rows themselves were not kept.
 */
import { type Hash, createHash } from "node:crypto";
import type { ResultEvent } from "./events.js";
import type { SessionRecorder } from "./recorder.js";

export class ResultCapture {
  private readonly rows: (string | null)[][] = [];
  private rowCount = 0;
  private bytes = 0;
  private kept = 0;
  private truncated = false;
  private readonly hash: Hash = createHash("sha256");

  constructor(private readonly recorder: SessionRecorder, readonly startedAt = Date.now()) {}

  /** `decode` is only called for rows that are kept. */
  add(raw: Buffer, decode: () => (string | null)[]): void {
    this.rowCount++;
    this.bytes += raw.length;
    this.hash.update(raw);
    if (this.truncated) return;
    if (this.kept + raw.length > this.recorder.caps.maxResultBytes || !this.recorder.reserve(raw.length)) {
      this.truncated = true;
      return;
    }
    this.kept += raw.length;
    this.rows.push(decode());
  }

  get count(): number {
    return this.rowCount;
  }

  get size(): number {
    return this.bytes;
  }

  finish(extra: Omit<ResultEvent, "e" | "rows" | "row_count" | "bytes">): ResultEvent {
    return {
      e: "result",
      ...extra,
      rows: this.rows,
      row_count: this.rowCount,
      bytes: this.bytes,
      ...(this.truncated ? { truncated: true } : {}),
      ...(this.rowCount > 0 ? { sha256: this.hash.digest("hex") } : {}),
      ms: Date.now() - this.startedAt,
    };
  }
}
