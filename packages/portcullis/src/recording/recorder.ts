/**
 * One session's recorder: events are serialised as they happen and handed to the journal, which
 * writes them with its next commit (within one event-loop turn). A long session therefore never
 * lives in memory, and a crash loses only what had not reached the operating system yet.
 */
import type { ChunkSource } from "../core/journal.js";
import type { RecordingChunk } from "../store/store.js";
import type { RecordingEvent } from "./events.js";

export interface RecordingCaps {
  /** Row bytes kept per operation; past it only counts and hashes. */
  maxResultBytes: number;
  /** Row bytes kept per session; past it only counts and hashes. */
  maxSessionBytes: number;
}

export class SessionRecorder implements ChunkSource {
  private lines: string[] = [];
  private chunk = 0;
  private firstAt = 0;
  private keptBytes = 0;

  constructor(
    readonly session: string,
    private readonly startedAt: number,
    readonly caps: RecordingCaps,
    private readonly onDirty: (r: SessionRecorder) => void,
  ) {}

  record(event: RecordingEvent): void {
    const now = Date.now();
    if (this.lines.length === 0) {
      this.firstAt = now;
      this.onDirty(this);
    }
    this.lines.push(JSON.stringify({ t: now - this.startedAt, ...event }));
  }

  /** How much of one result may still be kept: its own cap, within what is left of the session's. */
  get room(): number {
    return Math.max(0, Math.min(this.caps.maxResultBytes, this.caps.maxSessionBytes - this.keptBytes));
  }

  /** Reserves `n` bytes of the session's cap; false once it is spent. */
  reserve(n: number): boolean {
    if (this.keptBytes + n > this.caps.maxSessionBytes) return false;
    this.keptBytes += n;
    return true;
  }

  take(): RecordingChunk | undefined {
    if (this.lines.length === 0) return undefined;
    const events = this.lines.join("\n");
    this.lines = [];
    return { session: this.session, chunk: this.chunk++, at: this.firstAt, events };
  }
}
