/**
 * The embedded default store: one SQLite file, opened by one gateway process. WAL lets readers
 * (the API, `portcullis sessions list`, an offline responder) run while the gateway writes;
 * synchronous=NORMAL keeps each commit to a WAL append, which is durable across a process
 * crash and loses at most the last commits on power loss.
 */
import { chmodSync, closeSync, existsSync, mkdirSync, openSync } from "node:fs";
import { dirname } from "node:path";
import BetterSqlite3 from "better-sqlite3";
import type { Database, Statement } from "better-sqlite3";
import { PortcullisError, isPortcullisError } from "../../errors.js";
import type { RunContext } from "../../identity/principal.js";
import type {
  ApprovalRow, ApprovalState, GrantRow, BudgetUsageRow, FreezeRow, RevocationRow,
  AuditRow, CheckpointRow, JournalBatch, Protocol, RecordingChunk, SessionEnd, SessionFilter, SessionRecord, SessionStats, Store,
} from "../store.js";
import { applyMigrations, schemaVersion } from "./migrate.js";
import { MIGRATIONS, type Migration } from "./migrations.js";

export const MEMORY_PATH = ":memory:";

export interface SqliteStoreOptions {
  /** How long a write waits for another connection's lock before failing; default 5000 ms. */
  busyTimeoutMs?: number;
  /** Replaces the built-in migration list; for tests of the migration runner. */
  migrations?: readonly Migration[];
  /** Refuse to create the file: readers (audit verify, replay) must not mistake a wrong path for an empty store. */
  mustExist?: boolean;
}

interface SessionRow {
  id: string;
  protocol: string;
  connection: string;
  sub: string;
  groups: string;
  iss: string;
  jti: string | null;
  client_address: string;
  run: string;
  run_hints: string;
  started_at: number;
  ended_at: number | null;
  end_reason: string | null;
  stats: string | null;
}

interface CheckpointDbRow {
  seq: number;
  hash: string;
  at: number;
  key_id: string;
  signature: string;
}





/** Approval columns under the row's own names. */
const APPROVAL_COLUMNS = "SELECT id, state, created_at AS createdAt, expires_at AS expiresAt, body FROM approvals";

/** SQLite's largest page count: "no limit". */
const UNLIMITED_PAGES = 4294967294;

type Params = Record<string, string | number | null>;

export class SqliteStore implements Store {
  readonly path: string;
  private readonly db: Database;
  private readonly migrations: readonly Migration[];
  private readonly insertSession: Statement<[Params]>;
  private readonly endSessionStmt: Statement<[Params]>;
  private readonly getSessionStmt: Statement<[string], SessionRow>;
  private readonly pingStmt: Statement<[], number>;
  private readonly insertAudit: Statement<[AuditRow]>;
  private readonly insertChunk: Statement<[RecordingChunk]>;
  private readonly insertCheckpoint: Statement<[Params]>;
  private readonly lastAuditStmt: Statement<[], AuditRow>;
  private readonly readAuditStmt: Statement<[number, number], AuditRow>;
  private readonly commitBatch: (batch: JournalBatch) => void;
  private addressStmts?: { last: Statement<[string, string, string], number>; known: Statement<[string, string], number>; put: Statement<unknown[]> };
  /** One prepared statement per filter shape, so each can use the index that fits it. */
  private readonly listStmts = new Map<string, Statement<[Params], SessionRow>>();

  constructor(path: string, options: SqliteStoreOptions = {}) {
    this.path = path;
    this.migrations = options.migrations ?? MIGRATIONS;
    if (options.mustExist && path !== MEMORY_PATH && !existsSync(path)) {
      throw new PortcullisError("E_STORE", `no store at ${path}`);
    }
    this.db = guard("open", () => openDatabase(path, options.busyTimeoutMs ?? 5000));
    try {
      // Statements need the schema, so migrate before preparing them.
      this.migrate();
      this.insertSession = this.db.prepare(`
        INSERT INTO sessions (id, protocol, connection, sub, groups, iss, jti, client_address,
                              run, run_hints, started_at, ended_at, end_reason)
        VALUES (@id, @protocol, @connection, @sub, @groups, @iss, @jti, @client_address,
                @run, @run_hints, @started_at, @ended_at, @end_reason)`);
      // First end wins, matching Session.close(): a late second report must not rewrite history.
      this.endSessionStmt = this.db.prepare(
        "UPDATE sessions SET ended_at = @ended_at, end_reason = @end_reason, stats = @stats WHERE id = @id AND ended_at IS NULL",
      );
      this.getSessionStmt = this.db.prepare<[string], SessionRow>("SELECT * FROM sessions WHERE id = ?");
      this.pingStmt = this.db.prepare<[], number>("SELECT 1").pluck();
      this.insertAudit = this.db.prepare<[AuditRow]>(
        "INSERT INTO audit_records (seq, at, type, session, data, prev, hash) VALUES (@seq, @at, @type, @session, @data, @prev, @hash)",
      );
      this.insertChunk = this.db.prepare<[RecordingChunk]>(
        "INSERT INTO recording_chunks (session, chunk, at, events) VALUES (@session, @chunk, @at, @events)",
      );
      this.insertCheckpoint = this.db.prepare<[Params]>(
        "INSERT OR IGNORE INTO audit_checkpoints (seq, hash, at, key_id, signature) VALUES (@seq, @hash, @at, @key_id, @signature)",
      );
      this.lastAuditStmt = this.db.prepare<[], AuditRow>("SELECT * FROM audit_records ORDER BY seq DESC LIMIT 1");
      this.readAuditStmt = this.db.prepare<[number, number], AuditRow>("SELECT * FROM audit_records WHERE seq > ? ORDER BY seq LIMIT ?");
      this.commitBatch = this.db.transaction((b: JournalBatch) => {
        for (const rec of b.sessionsOpened) this.insertSession.run(sessionParams(rec));
        for (const row of b.audit) this.insertAudit.run(row);
        for (const c of b.chunks) this.insertChunk.run(c);
        for (const e of b.sessionsEnded) this.endSessionStmt.run(endParams(e));
        for (const c of b.checkpoints) {
          this.insertCheckpoint.run({ seq: c.seq, hash: c.hash, at: c.at, key_id: c.keyId, signature: c.signature });
        }
      });
    } catch (err) {
      this.db.close();
      throw wrap("open", err);
    }
  }

  migrate(): void {
    guard("migrate", () => applyMigrations(this.db, this.migrations));
  }

  /** Highest applied migration version. */
  schemaVersion(): number {
    return guard("read schema version", () => schemaVersion(this.db));
  }

  ping(): boolean {
    try {
      return this.pingStmt.get() === 1;
    } catch {
      return false;
    }
  }

  createSession(rec: SessionRecord): void {
    guard("create session", () => this.insertSession.run(sessionParams(rec)));
  }

  /** Idempotent: ending an unknown or already-ended session changes nothing. */
  endSession(id: string, endedAt: Date, reason: string, stats?: SessionStats): void {
    guard("end session", () => this.endSessionStmt.run(endParams({ id, endedAt, reason, ...(stats ? { stats } : {}) })));
  }

  getSession(id: string): SessionRecord | undefined {
    const row = guard("get session", () => this.getSessionStmt.get(id));
    return row ? toRecord(row) : undefined;
  }

  /** Newest first. */
  listSessions(filter: SessionFilter = {}): SessionRecord[] {
    const where: string[] = [];
    const params: Params = { limit: normaliseLimit(filter.limit) };
    if (filter.sub !== undefined) {
      where.push("sub = @sub");
      params.sub = filter.sub;
    }
    if (filter.connection !== undefined) {
      where.push("connection = @connection");
      params.connection = filter.connection;
    }
    if (filter.live !== undefined) where.push(filter.live ? "ended_at IS NULL" : "ended_at IS NOT NULL");
    if (filter.since !== undefined) {
      where.push("started_at >= @since");
      params.since = filter.since.getTime();
    }
    if (filter.until !== undefined) {
      where.push("started_at < @until");
      params.until = filter.until.getTime();
    }
    if (filter.runId !== undefined) {
      where.push("(json_extract(run, '$.run_id') = @run_id OR json_extract(run_hints, '$.run_id') = @run_id)");
      params.run_id = filter.runId;
    }
    if (filter.endReason !== undefined) {
      // substr, not LIKE: a reason prefix may contain % or _.
      where.push("substr(end_reason, 1, length(@end_reason)) = @end_reason");
      params.end_reason = filter.endReason;
    }
    const key = where.join(" AND ");
    let stmt = this.listStmts.get(key);
    if (!stmt) {
      // rowid breaks ties between sessions started in the same millisecond: later insert first.
      const sql = `SELECT * FROM sessions ${key ? `WHERE ${key}` : ""} ORDER BY started_at DESC, rowid DESC LIMIT @limit`;
      stmt = guard("list sessions", () => this.db.prepare<[Params], SessionRow>(sql));
      this.listStmts.set(key, stmt);
    }
    const s = stmt;
    return guard("list sessions", () => s.all(params)).map(toRecord);
  }

  commit(batch: JournalBatch): void {
    guard("commit journal", () => this.commitBatch(batch));
  }

  lastAudit(): AuditRow | undefined {
    return guard("read audit", () => this.lastAuditStmt.get());
  }

  readAudit(afterSeq: number, limit: number): AuditRow[] {
    return guard("read audit", () => this.readAuditStmt.all(afterSeq, limit));
  }

  firstAuditSeqAt(at: Date): number | undefined {
    const seq = guard("read audit", () =>
      this.db.prepare<[number], number>("SELECT min(seq) FROM audit_records WHERE at >= ?").pluck().get(at.getTime()));
    return typeof seq === "number" ? seq : undefined;
  }

  listCheckpoints(): CheckpointRow[] {
    const rows = guard("read checkpoints", () => this.db.prepare<[], CheckpointDbRow>("SELECT * FROM audit_checkpoints ORDER BY seq").all());
    return rows.map((r) => ({ seq: r.seq, hash: r.hash, at: r.at, keyId: r.key_id, signature: r.signature }));
  }

  readRecording(session: string): RecordingChunk[] {
    return guard("read recording", () =>
      this.db.prepare<[string], RecordingChunk>("SELECT * FROM recording_chunks WHERE session = ? ORDER BY chunk").all(session));
  }

  pruneRecordings(endedBefore: Date): number {
    return guard("prune recordings", () => {
      const ids = this.db.prepare<[number], string>("SELECT id FROM sessions WHERE ended_at IS NOT NULL AND ended_at < ?")
        .pluck().all(endedBefore.getTime());
      const del = this.db.prepare<[string]>("DELETE FROM recording_chunks WHERE session = ?");
      let pruned = 0;
      this.db.transaction(() => {
        for (const id of ids) if (del.run(id).changes > 0) pruned++;
      })();
      return pruned;
    });
  }

  endAbandonedSessions(at: Date, reason: string): string[] {
    return guard("end abandoned sessions", () => this.db.transaction(() => {
      const ids = this.db.prepare<[], string>("SELECT id FROM sessions WHERE ended_at IS NULL").pluck().all();
      for (const id of ids) this.endSessionStmt.run(endParams({ id, endedAt: at, reason }));
      return ids;
    })());
  }

  sinkCursor(name: string): number {
    const seq = guard("read sink cursor", () =>
      this.db.prepare<[string], number>("SELECT seq FROM audit_sink_cursors WHERE name = ?").pluck().get(name));
    return seq ?? 0;
  }

  setSinkCursor(name: string, seq: number): void {
    guard("write sink cursor", () =>
      this.db.prepare("INSERT INTO audit_sink_cursors (name, seq) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET seq = excluded.seq")
        .run(name, seq));
  }

  saveApproval(row: ApprovalRow): void {
    guard("save approval", () => this.db.prepare(`
      INSERT INTO approvals (id, state, created_at, expires_at, body) VALUES (@id, @state, @createdAt, @expiresAt, @body)
      ON CONFLICT (id) DO UPDATE SET state = excluded.state, expires_at = excluded.expires_at, body = excluded.body`).run(row));
  }

  getApproval(id: string): ApprovalRow | undefined {
    return guard("read approval", () => this.db.prepare<[string], ApprovalRow>(`${APPROVAL_COLUMNS} WHERE id = ?`).get(id));
  }

  listApprovals(filter: { state?: ApprovalState; limit?: number } = {}): ApprovalRow[] {
    const limit = normaliseLimit(filter.limit);
    const rows = guard("list approvals", () => (filter.state
      ? this.db.prepare<[string, number], ApprovalRow>(`${APPROVAL_COLUMNS} WHERE state = ? ORDER BY created_at DESC, rowid DESC LIMIT ?`).all(filter.state, limit)
      : this.db.prepare<[number], ApprovalRow>(`${APPROVAL_COLUMNS} ORDER BY created_at DESC, rowid DESC LIMIT ?`).all(limit)));
    return rows;
  }

  createGrant(g: GrantRow): void {
    guard("create grant", () => this.db.prepare(`
      INSERT INTO grants (id, approval, sub, iss, connection, kind, key, uses_left, expires_at)
      VALUES (@id, @approval, @sub, @iss, @connection, @kind, @key, @usesLeft, @expiresAt)`).run(g));
  }

  useGrant(q: { sub: string; iss: string; connection: string; onceKey: string; windowKey: string; now: number }): GrantRow | undefined {
    return guard("use grant", () => this.db.transaction(() => {
      const row = this.db.prepare<[Params], GrantRow>(`
        SELECT id, approval, sub, iss, connection, kind, key, uses_left AS usesLeft, expires_at AS expiresAt FROM grants
        WHERE sub = @sub AND iss = @iss AND connection = @connection AND expires_at > @now
          AND ((kind = 'once' AND key = @once AND uses_left > 0) OR (kind = 'window' AND key = @window))
        ORDER BY kind = 'once' DESC, expires_at LIMIT 1`).get({ sub: q.sub, iss: q.iss, connection: q.connection, now: q.now, once: q.onceKey, window: q.windowKey });
      if (!row) return undefined;
      // Spent inside the same transaction: two sessions retrying at once cannot both use it.
      if (row.kind === "once") this.db.prepare("UPDATE grants SET uses_left = uses_left - 1 WHERE id = ?").run(row.id);
      return row;
    }).immediate());
  }

  saveRevocation(r: RevocationRow): void {
    guard("save revocation", () => this.db.prepare(`
      INSERT INTO revocations (id, kind, value, reason, created_by, created_at, expires_at, lifted_at, lifted_by)
      VALUES (@id, @kind, @value, @reason, @createdBy, @createdAt, @expiresAt, @liftedAt, @liftedBy)
      ON CONFLICT (id) DO UPDATE SET lifted_at = excluded.lifted_at, lifted_by = excluded.lifted_by, expires_at = excluded.expires_at`).run(r));
  }

  listRevocations(includeLifted = false): RevocationRow[] {
    // Columns aliased to the row's own names: nothing to map.
    return guard("list revocations", () => this.db.prepare<[], RevocationRow>(`
      SELECT id, kind, value, reason, created_by AS createdBy, created_at AS createdAt, expires_at AS expiresAt,
             lifted_at AS liftedAt, lifted_by AS liftedBy
      FROM revocations ${includeLifted ? "" : "WHERE lifted_at IS NULL"} ORDER BY created_at DESC`).all());
  }

  saveFreeze(f: FreezeRow): void {
    guard("save freeze", () => this.db.prepare(`
      INSERT INTO freezes (connection, reason, created_by, created_at) VALUES (@connection, @reason, @createdBy, @createdAt)
      ON CONFLICT (connection) DO UPDATE SET reason = excluded.reason, created_by = excluded.created_by, created_at = excluded.created_at`).run(f));
  }

  deleteFreeze(connection: string): boolean {
    return guard("delete freeze", () => this.db.prepare("DELETE FROM freezes WHERE connection = ?").run(connection).changes > 0);
  }

  listFreezes(): FreezeRow[] {
    return guard("list freezes", () => this.db.prepare<[], { connection: string; reason: string; created_by: string; created_at: number }>("SELECT * FROM freezes").all())
      .map((f) => ({ connection: f.connection, reason: f.reason, createdBy: f.created_by, createdAt: f.created_at }));
  }

  addBudgetUsage(rows: readonly BudgetUsageRow[]): void {
    guard("add budget usage", () => {
      const get = this.db.prepare<[string, string, number], { tables: string }>("SELECT tables FROM budget_usage WHERE budget = ? AND key = ? AND minute = ?");
      const put = this.db.prepare(`
        INSERT INTO budget_usage (budget, key, minute, rows, bytes, statements, tables) VALUES (@budget, @key, @minute, @rows, @bytes, @statements, @tables)
        ON CONFLICT (budget, key, minute) DO UPDATE SET rows = rows + excluded.rows, bytes = bytes + excluded.bytes,
          statements = statements + excluded.statements, tables = excluded.tables`);
      this.db.transaction(() => {
        for (const r of rows) {
          const prev = get.get(r.budget, r.key, r.minute);
          const tables = [...new Set([...(prev ? (JSON.parse(prev.tables) as string[]) : []), ...r.tables])];
          put.run({ budget: r.budget, key: r.key, minute: r.minute, rows: r.rows, bytes: r.bytes, statements: r.statements, tables: JSON.stringify(tables) });
        }
      })();
    });
  }

  loadBudgetUsage(sinceMinute: number): BudgetUsageRow[] {
    return guard("load budget usage", () => {
      this.db.prepare("DELETE FROM budget_usage WHERE minute < ?").run(sinceMinute);
      return this.db.prepare<[], Omit<BudgetUsageRow, "tables"> & { tables: string }>("SELECT * FROM budget_usage").all()
        .map((r) => ({ ...r, tables: JSON.parse(r.tables) as string[] }));
    });
  }

  touchClientAddress(sub: string, iss: string, address: string, now: number): { lastSeen?: number; known: boolean } {
    return guard("touch client address", () => {
      this.addressStmts ??= {
        last: this.db.prepare<[string, string, string], number>("SELECT last_seen FROM client_addresses WHERE sub = ? AND iss = ? AND address = ?").pluck(),
        known: this.db.prepare<[string, string], number>("SELECT 1 FROM client_addresses WHERE sub = ? AND iss = ? LIMIT 1").pluck(),
        put: this.db.prepare("INSERT INTO client_addresses (sub, iss, address, last_seen) VALUES (?, ?, ?, ?) ON CONFLICT (sub, iss, address) DO UPDATE SET last_seen = excluded.last_seen"),
      };
      const st = this.addressStmts;
      return this.db.transaction(() => {
        const last = st.last.get(sub, iss, address);
        const known = st.known.get(sub, iss) !== undefined;
        st.put.run(sub, iss, address, now);
        return { ...(last !== undefined ? { lastSeen: last } : {}), known };
      })();
    });
  }

  setSizeLimit(bytes: number | undefined): void {
    guard("set size limit", () => {
      const pageSize = this.db.pragma("page_size", { simple: true }) as number;
      const pages = bytes === undefined ? UNLIMITED_PAGES : Math.max(1, Math.ceil(bytes / pageSize));
      this.db.pragma(`max_page_count = ${pages}`);
    });
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}

function sessionParams(rec: SessionRecord): Params {
  return {
    id: rec.id,
    protocol: rec.protocol,
    connection: rec.connection,
    sub: rec.sub,
    groups: JSON.stringify(rec.groups),
    iss: rec.iss,
    jti: rec.jti ?? null,
    client_address: rec.clientAddress,
    run: JSON.stringify(rec.run),
    run_hints: JSON.stringify(rec.runHints),
    started_at: rec.startedAt.getTime(),
    ended_at: rec.endedAt?.getTime() ?? null,
    end_reason: rec.endReason ?? null,
  };
}

function endParams(e: SessionEnd): Params {
  return { id: e.id, ended_at: e.endedAt.getTime(), end_reason: e.reason, stats: e.stats ? JSON.stringify(e.stats) : null };
}

function openDatabase(path: string, busyTimeoutMs: number): Database {
  if (path !== MEMORY_PATH && path !== "") {
    // The store holds who connected where and when; keep it to the gateway's own user.
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    closeSync(openSync(path, "a", 0o600));
    chmodSync(path, 0o600);
  }
  const db = new BetterSqlite3(path, { timeout: busyTimeoutMs });
  try {
    const mode = db.pragma("journal_mode = WAL", { simple: true });
    if (path !== MEMORY_PATH && path !== "" && mode !== "wal") {
      throw new PortcullisError("E_STORE", `could not enable WAL on ${path} (journal_mode is ${String(mode)})`);
    }
    db.pragma("synchronous = NORMAL");
    db.pragma("foreign_keys = ON");
    return db;
  } catch (err) {
    db.close();
    throw err;
  }
}

function toRecord(row: SessionRow): SessionRecord {
  const rec: SessionRecord = {
    id: row.id,
    protocol: row.protocol as Protocol,
    connection: row.connection,
    sub: row.sub,
    groups: JSON.parse(row.groups) as string[],
    iss: row.iss,
    clientAddress: row.client_address,
    run: JSON.parse(row.run) as RunContext,
    runHints: JSON.parse(row.run_hints) as RunContext,
    startedAt: new Date(row.started_at),
  };
  if (row.jti !== null) rec.jti = row.jti;
  if (row.ended_at !== null) rec.endedAt = new Date(row.ended_at);
  if (row.end_reason !== null) rec.endReason = row.end_reason;
  if (row.stats !== null) rec.stats = JSON.parse(row.stats) as SessionStats;
  return rec;
}

/** SQLite reads a negative LIMIT as "no limit". */
function normaliseLimit(limit: number | undefined): number {
  if (limit === undefined || !Number.isFinite(limit)) return -1;
  return Math.max(0, Math.floor(limit));
}

/**
 * Every storage failure surfaces as E_STORE so the core can fail closed (PX005) without knowing
 * SQLite's error types. SQLite messages name tables and constraints, never row values.
 */
function guard<T>(op: string, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    throw wrap(op, err);
  }
}

function wrap(op: string, err: unknown): PortcullisError {
  if (isPortcullisError(err)) return err;
  const msg = err instanceof Error ? err.message : String(err);
  return new PortcullisError("E_STORE", `store: ${op} failed: ${msg}`, { cause: err });
}
