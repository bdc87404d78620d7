/**
 * The one storage interface. Only implementations under store/ know our own SQL schema;
 * everything else speaks these types.
 */
import type { RunContext } from "../identity/principal.js";

export type Protocol = "postgres" | "mysql" | "http" | "ssh";

export interface SessionRecord {
  id: string;
  protocol: Protocol;
  connection: string;
  sub: string;
  groups: string[];
  iss: string;
  jti?: string;
  clientAddress: string;
  /** Run context from signed token claims. */
  run: RunContext;
  /** Run context the client sent unsigned (startup parameters, headers); never trusted for policy. */
  runHints: RunContext;
  startedAt: Date;
  endedAt?: Date;
  /** How the session ended: "client_closed", "upstream_closed", "killed: <reason>", "error: <code>", ... */
  endReason?: string;
  /** Totals written when the session ends. */
  stats?: SessionStats;
}

export interface SessionStats {
  operations: number;
  denied: number;
  rows: number;
  bytes: number;
}

export interface SessionFilter {
  sub?: string;
  connection?: string;
  /** Matches the signed run context or the client's unsigned hint. */
  runId?: string;
  live?: boolean;
  since?: Date;
  until?: Date;
  /** Prefix of the end reason: "client_closed", "killed", "error", "abnormal", ... */
  endReason?: string;
  limit?: number;
}

export type ApprovalState = "pending" | "approved" | "denied" | "expired" | "cancelled";

/** An approval as stored; the domain type lives in approvals/. */
export interface ApprovalRow {
  id: string;
  state: ApprovalState;
  createdAt: number;
  expiresAt: number;
  /** JSON of everything else. */
  body: string;
}

export interface GrantRow {
  id: string;
  approval: string;
  sub: string;
  iss: string;
  connection: string;
  kind: "once" | "window";
  key: string;
  usesLeft: number | null;
  expiresAt: number;
}

export type RevocationKind = "subject" | "jti" | "group" | "issuer";

export interface RevocationRow {
  id: string;
  kind: RevocationKind;
  value: string;
  reason: string;
  createdBy: string;
  createdAt: number;
  expiresAt: number | null;
  liftedAt: number | null;
  liftedBy: string | null;
}

export interface FreezeRow {
  connection: string;
  reason: string;
  createdBy: string;
  createdAt: number;
}

/** Consumption of one budget by one scope key in one minute. */
export interface BudgetUsageRow {
  budget: string;
  key: string;
  minute: number;
  rows: number;
  bytes: number;
  statements: number;
  tables: string[];
}

/** One audit record as stored: `data` is the canonical JSON the hash covers. */
export interface AuditRow {
  seq: number;
  /** ms since the epoch */
  at: number;
  type: string;
  session: string | null;
  data: string;
  prev: string;
  hash: string;
}

/** A signed statement that record `seq` has hash `hash`. */
export interface CheckpointRow {
  seq: number;
  hash: string;
  at: number;
  keyId: string;
  signature: string;
}

/** A run of recorded events of one session, in order; `events` is JSON lines. */
export interface RecordingChunk {
  session: string;
  chunk: number;
  at: number;
  events: string;
}

export interface SessionEnd {
  id: string;
  endedAt: Date;
  reason: string;
  stats?: SessionStats;
}

/** Everything the journal hands over in one tick; committed all or nothing. */
export interface JournalBatch {
  sessionsOpened: SessionRecord[];
  audit: AuditRow[];
  chunks: RecordingChunk[];
  sessionsEnded: SessionEnd[];
  checkpoints: CheckpointRow[];
}

export interface Store {
  /** Applies pending migrations; idempotent. */
  migrate(): void;
  /** Cheap liveness check for /readyz. */
  ping(): boolean;
  createSession(rec: SessionRecord): void;
  endSession(id: string, endedAt: Date, reason: string, stats?: SessionStats): void;
  getSession(id: string): SessionRecord | undefined;
  listSessions(filter?: SessionFilter): SessionRecord[];
  /** Writes a journal batch in one transaction (durable on return); throws E_STORE and writes nothing on failure. */
  commit(batch: JournalBatch): void;
  /** Highest-numbered audit record. */
  lastAudit(): AuditRow | undefined;
  /** Audit records with seq > afterSeq, ascending, at most `limit`. */
  readAudit(afterSeq: number, limit: number): AuditRow[];
  /** First seq of the records written at or after `at` (for `--since`). */
  firstAuditSeqAt(at: Date): number | undefined;
  listCheckpoints(): CheckpointRow[];
  readRecording(session: string): RecordingChunk[];
  /** Deletes recordings of sessions that ended before `endedBefore`; returns how many sessions. Audit stays. */
  pruneRecordings(endedBefore: Date): number;
  /** Sessions left open by a process that died: marks them ended now with `reason`; returns their ids. */
  endAbandonedSessions(at: Date, reason: string): string[];
  sinkCursor(name: string): number;
  setSinkCursor(name: string, seq: number): void;
  saveApproval(row: ApprovalRow): void;
  getApproval(id: string): ApprovalRow | undefined;
  /** Newest first. */
  listApprovals(filter?: { state?: ApprovalState; limit?: number }): ApprovalRow[];
  createGrant(grant: GrantRow): void;
  /**
   * Uses a grant for this identity, connection and operation: a single-use grant matching `onceKey`
   * (spent atomically) or a window grant matching `windowKey`; undefined when none is valid at `now`.
   */
  useGrant(q: { sub: string; iss: string; connection: string; onceKey: string; windowKey: string; now: number }): GrantRow | undefined;
  saveRevocation(r: RevocationRow): void;
  /** Revocations not lifted (expired ones included; the caller decides what is in force). */
  listRevocations(includeLifted?: boolean): RevocationRow[];
  saveFreeze(f: FreezeRow): void;
  deleteFreeze(connection: string): boolean;
  listFreezes(): FreezeRow[];
  /** Adds to (or creates) the given minutes' usage. */
  addBudgetUsage(rows: readonly BudgetUsageRow[]): void;
  /** Usage since `sinceMinute`, for rebuilding the windows at start; older rows are deleted. */
  loadBudgetUsage(sinceMinute: number): BudgetUsageRow[];
  /** Records that this identity connected from `address` now; returns when it was last seen from it (undefined: never), and whether it was seen from anywhere before. */
  touchClientAddress(sub: string, iss: string, address: string, now: number): { lastSeen?: number; known: boolean };
  /** Caps the store's size; writes past it fail with E_STORE (disk full), as if the disk were full. */
  setSizeLimit(bytes: number | undefined): void;
  close(): void;
}
