/**
 * The journal: the one writer of audit records, recording chunks and session rows. Everything
 * handed to it within one event-loop turn is committed in one SQLite transaction (group commit),
 * so eight sessions each waiting for their audit record cost one commit, not eight.
 *
 * Write-ahead: `append` resolves only once its record is committed; an adapter forwards the
 * operation after that. When a commit fails, the journal is unavailable: every later append is
 * refused at once (the adapter answers PX005), an alert is raised, and a probe retries each second;
 * the first successful probe writes an `audit_unavailable` record with the outage's span and the
 * number of refused operations, and traffic resumes by itself.
 */
import { PortcullisError } from "../errors.js";
import { type AuditEntry, AuditChain } from "../audit/chain.js";
import type { CheckpointSigner } from "../audit/signing.js";
import type { CheckpointRow, RecordingChunk, SessionEnd, SessionRecord, Store } from "../store/store.js";
import type { Logger } from "./logger.js";

/** Somewhere a checkpoint is copied outside the store (a file, a webhook). */
export interface CheckpointAnchor {
  readonly name: string;
  write(cp: CheckpointRow): Promise<void>;
}

/** Something that accumulates recording events and hands them over as chunks. */
export interface ChunkSource {
  take(): RecordingChunk | undefined;
}

export interface JournalOptions {
  store: Store;
  signer: CheckpointSigner;
  /** A checkpoint after this many records... */
  checkpointEvery: number;
  /** ...or after this long, if anything was written since the last one. */
  checkpointIntervalMs: number;
  anchors?: readonly CheckpointAnchor[];
  logger: Logger;
  /** Called when writing fails (false) and when it works again (true). */
  onAvailability?: (available: boolean, detail: string) => void;
  /** Called after each commit with the newest record's seq (sinks wake up). */
  onCommitted?: (lastSeq: number) => void;
  retryMs?: number;
  /** How long recording events may wait for an audit commit to ride along with (default 10 ms). */
  recordingDelayMs?: number;
  /**
   * Benchmarks only: accept everything and write nothing, to measure what write-ahead audit and
   * recording cost. Not reachable from the config file or the CLI.
   */
  discardForBenchmark?: boolean;
}

const DEFAULT_RECORDING_DELAY_MS = 10;

class Batch {
  readonly opened: SessionRecord[] = [];
  readonly audit: AuditEntry[] = [];
  readonly ended: SessionEnd[] = [];
  readonly done: Promise<void>;
  resolve!: () => void;
  reject!: (err: Error) => void;

  constructor() {
    this.done = new Promise<void>((res, rej) => {
      this.resolve = res;
      this.reject = rej;
    });
    // Fire-and-forget appends (a denial, a session end) must not become unhandled rejections.
    this.done.catch(() => {});
  }
}

export class Journal {
  private readonly chain: AuditChain;
  private batch = new Batch();
  private scheduled = false;
  /** Pending flush for recording chunks alone. */
  private lazyTimer?: NodeJS.Timeout;
  private readonly dirty = new Set<ChunkSource>();
  private pendingCheckpoints: CheckpointRow[] = [];
  private lastCheckpointSeq: number;
  private readonly checkpointTimer: NodeJS.Timeout;
  private available = true;
  private outage?: { since: Date; refused: number; error: string; retry?: NodeJS.Timeout };
  /** Session ends that could not be written during an outage; written by the probe. */
  private endsOwed: SessionEnd[] = [];
  private closed = false;
  private readonly refusal: Promise<void>;

  constructor(private readonly o: JournalOptions) {
    this.chain = AuditChain.after(o.store.lastAudit());
    this.lastCheckpointSeq = o.store.listCheckpoints().at(-1)?.seq ?? 0;
    this.checkpointTimer = setInterval(() => this.checkpointIfBehind(), o.checkpointIntervalMs);
    this.checkpointTimer.unref();
    this.refusal = Promise.reject(new PortcullisError("E_AUDIT_UNAVAILABLE", "audit log unavailable"));
    this.refusal.catch(() => {});
  }

  get isAvailable(): boolean {
    return this.available;
  }

  /** Newest committed record. */
  get head(): { seq: number; hash: string } {
    return { seq: this.chain.seq, hash: this.chain.hash };
  }

  /** Queues an audit record; the promise resolves once it is committed (write-ahead) and rejects with E_AUDIT_UNAVAILABLE. */
  append(entry: AuditEntry): Promise<void> | undefined {
    if (this.o.discardForBenchmark) return undefined;
    if (!this.available || this.closed) {
      if (this.outage) this.outage.refused++;
      return this.refusal;
    }
    this.batch.audit.push(entry);
    this.schedule();
    return this.batch.done;
  }

  /** A new session's row and its audit record, committed together before any byte reaches the target. */
  openSession(rec: SessionRecord, entry: AuditEntry): Promise<void> | undefined {
    if (this.o.discardForBenchmark) return undefined;
    if (!this.available || this.closed) return this.append(entry);
    this.batch.opened.push(rec);
    return this.append(entry);
  }

  /** Never refused: an end that cannot be written now is owed and written when the store recovers. */
  endSession(end: SessionEnd, entry: AuditEntry): void {
    if (this.closed || this.o.discardForBenchmark) return;
    if (!this.available) {
      this.endsOwed.push(end);
      return;
    }
    this.batch.ended.push(end);
    this.append(entry);
  }

  /**
   * A recorder has events to hand over. Nothing waits on them, so they ride along with the next
   * audit commit, or go on their own after `recordingDelayMs`: under load that saves a commit
   * per operation, and a crash loses at most that much of the recordings.
   */
  markDirty(source: ChunkSource): void {
    if (this.closed) return;
    if (this.o.discardForBenchmark) {
      source.take();
      return;
    }
    this.dirty.add(source);
    if (!this.scheduled && !this.lazyTimer) {
      this.lazyTimer = setTimeout(() => this.flush(), this.o.recordingDelayMs ?? DEFAULT_RECORDING_DELAY_MS);
      this.lazyTimer.unref();
    }
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    // setImmediate runs after the poll phase: every session whose bytes arrived this turn has appended.
    setImmediate(() => this.flush());
  }

  /** Commits everything queued now. */
  flush(): void {
    this.scheduled = false;
    if (this.lazyTimer) {
      clearTimeout(this.lazyTimer);
      this.lazyTimer = undefined;
    }
    const batch = this.batch;
    this.batch = new Batch();
    const chunks = this.takeChunks();
    if (!this.available) {
      // A batch queued just before the failure: its operations are refused, its chunks lost.
      batch.reject(new PortcullisError("E_AUDIT_UNAVAILABLE", "audit log unavailable"));
      this.endsOwed.push(...batch.ended);
      return;
    }
    if (batch.audit.length === 0 && chunks.length === 0 && this.pendingCheckpoints.length === 0 && batch.opened.length === 0) {
      batch.resolve();
      return;
    }
    const rows = this.chain.seal(batch.audit);
    const checkpoints = this.pendingCheckpoints;
    try {
      this.o.store.commit({ sessionsOpened: batch.opened, audit: rows, chunks, sessionsEnded: batch.ended, checkpoints });
    } catch (err) {
      this.endsOwed.push(...batch.ended);
      this.fail(err as Error);
      batch.reject(new PortcullisError("E_AUDIT_UNAVAILABLE", "audit log unavailable"));
      return;
    }
    this.committed(rows, checkpoints);
    batch.resolve();
  }

  private takeChunks(): RecordingChunk[] {
    const chunks: RecordingChunk[] = [];
    for (const src of this.dirty) {
      const c = src.take();
      if (c) chunks.push(c);
    }
    this.dirty.clear();
    return chunks;
  }

  private committed(rows: { seq: number; hash: string }[], checkpoints: CheckpointRow[]): void {
    this.chain.advance(rows);
    this.pendingCheckpoints = [];
    for (const cp of checkpoints) this.anchor(cp);
    if (rows.length > 0) this.o.onCommitted?.(this.chain.seq);
    if (this.chain.seq - this.lastCheckpointSeq >= this.o.checkpointEvery) this.checkpoint();
  }

  private checkpointIfBehind(): void {
    if (this.available && this.chain.seq > this.lastCheckpointSeq) this.checkpoint();
  }

  /** Signs the head; the checkpoint is stored with the next commit and then copied to the anchors. */
  private checkpoint(): void {
    if (this.chain.seq === 0) return;
    this.pendingCheckpoints.push(this.o.signer.sign(this.chain.seq, this.chain.hash));
    this.lastCheckpointSeq = this.chain.seq;
    this.schedule();
  }

  private anchor(cp: CheckpointRow): void {
    for (const a of this.o.anchors ?? []) {
      a.write(cp).catch((err: Error) => this.o.logger.warn({ anchor: a.name, seq: cp.seq, err: err.message }, "audit checkpoint could not be anchored"));
    }
  }

  private fail(err: Error): void {
    if (!this.available) return;
    this.available = false;
    this.outage = { since: new Date(), refused: 0, error: err.message };
    this.o.logger.error({ err: err.message }, "audit log unavailable: refusing new operations until it can be written");
    this.o.onAvailability?.(false, err.message);
    this.armProbe();
  }

  private armProbe(): void {
    const outage = this.outage;
    if (!outage || this.closed) return;
    outage.retry = setTimeout(() => this.probe(), this.o.retryMs ?? 1000);
    outage.retry.unref();
  }

  private probe(): void {
    const outage = this.outage;
    if (!outage) return;
    const rows = this.chain.seal([{
      type: "audit_unavailable",
      data: { since: outage.since.toISOString(), until: new Date().toISOString(), refused_operations: outage.refused, error: outage.error },
    }]);
    const checkpoints = this.pendingCheckpoints;
    try {
      this.o.store.commit({ sessionsOpened: [], audit: rows, chunks: [], sessionsEnded: this.endsOwed, checkpoints });
    } catch {
      this.armProbe();
      return;
    }
    this.endsOwed = [];
    this.outage = undefined;
    this.available = true;
    this.o.logger.warn({ refused: outage.refused, since: outage.since.toISOString() }, "audit log writable again: operations resume");
    this.o.onAvailability?.(true, `refused ${outage.refused} operations`);
    this.committed(rows, checkpoints);
  }

  /** Final commit and checkpoint at shutdown. */
  close(): void {
    if (this.closed) return;
    clearInterval(this.checkpointTimer);
    if (this.outage?.retry) clearTimeout(this.outage.retry);
    this.flush();
    if (this.available && this.chain.seq > this.lastCheckpointSeq) {
      this.checkpoint();
      this.flush();
    }
    this.closed = true;
  }
}
