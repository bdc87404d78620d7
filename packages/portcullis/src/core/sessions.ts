/**
 * Session lifecycle and the live-session registry. An adapter opens a Session once the agent is
 * authenticated and authorised for a connection, and closes it exactly once, however it ends.
 * The registry is how an operator (and later revocation, freeze, token expiry) reaches a live
 * session: `kill` asks the adapter, through its `terminate` callback, to end it in the wire's own way.
 *
 * This is also where every protocol's operations meet audit and recording: `decided` turns a
 * policy decision into an audit record (write-ahead for allowed operations) and a recording event,
 * and `recordResult` adds what came back, already masked.
 */
import { randomUUID } from "node:crypto";
import { EventEmitter } from "node:events";
import type { Principal, RunContext } from "../identity/principal.js";
import type { MessageEvent, ResultEvent } from "../recording/events.js";
import { ResultCapture } from "../recording/result-capture.js";
import { type RecordingCaps, SessionRecorder } from "../recording/recorder.js";
import type { Protocol, SessionRecord, SessionStats } from "../store/store.js";
import type { AuditEntry } from "../audit/chain.js";
import type { ErrorCode } from "../errors.js";
import type { SessionMeter } from "./budgets.js";
import type { Journal } from "./journal.js";
import { SessionLifetime } from "./lifetime.js";

/** One policy decision about one operation of a session: what recording and audit will store. */
export interface DecisionEvent {
  session: string;
  at: Date;
  /** What the operation does, without literal values. */
  operation: {
    type: "sql" | "http" | "ssh";
    kinds?: string[];
    tables?: string[];
    functions?: string[];
    /** Statement text with literals replaced by $n. */
    summary?: string;
  };
  action: "allow" | "deny" | "approve";
  rule?: string;
  /**
   * "prepare": the operation is only being readied (a Parse); it runs later and is judged again
   * then. An allowed prepare is neither audited nor recorded: its execution is.
   */
  phase?: "prepare" | "execute";
}

export type DecisionInput = Omit<DecisionEvent, "session" | "at">;

/** What the core answers to a decision: the operation's number and, for an allowed one, when it may go ahead. */
export interface OperationTicket {
  /** 0 for an allowed prepare, which is not an operation of its own. */
  op: number;
  /** Resolves once the audit record is committed; rejects (E_AUDIT_UNAVAILABLE) when it cannot be. Absent: nothing to wait for. */
  durable?: Promise<void>;
  /** The policy allowed it (or sent it for approval), but containment refuses it: a spent budget, a revoked identity. */
  refusal?: Refusal;
}

export interface Refusal {
  code: ErrorCode;
  message: string;
}

/** Containment's say over every operation, after policy: budgets, revocations. */
export interface OperationGuard {
  check(session: Session, tables: readonly string[]): Refusal | undefined;
}

export interface OpenSessionInput {
  protocol: Protocol;
  connection: string;
  principal: Principal;
  clientAddress: string;
  runHints?: RunContext;
  /** Called by kill(): the adapter ends the session with a wire-level error (`code` says which) and closes it. */
  terminate: (reason: string, code: ErrorCode) => void;
}

export interface SessionManagerOptions {
  journal: Journal;
  /** Recording caps in force; undefined when recording is off. */
  recording: () => RecordingCaps | undefined;
  /** The budgets that apply to a new session. */
  meter?: (p: Principal, connection: string) => SessionMeter;
  guard?: OperationGuard;
  /** identity.expiry_grace: how long an operation running at the token's expiry may take to finish. */
  expiryGrace?: () => number;
}

const PREPARE_ONLY: OperationTicket = { op: 0 };

/** How a session the gateway ended is recorded: `revoked: …`, `frozen: …`, `killed: …` or `token_expired` (what `--outcome` filters on). */
export function endReasonFor(code: ErrorCode, reason: string): string {
  if (code === "E_TOKEN_EXPIRED") return "token_expired";
  return `${code === "E_REVOKED" ? "revoked" : code === "E_FROZEN" ? "frozen" : "killed"}: ${reason}`;
}

export class Session {
  readonly id: string;
  readonly record: SessionRecord;
  readonly principal: Principal;
  readonly stats: SessionStats = { operations: 0, denied: 0, rows: 0, bytes: 0 };
  /** Absent when recording is off. */
  readonly recorder?: SessionRecorder;
  /**
   * Named in every decision record (signed claims and, apart, the client's hints), so an export
   * line says which graph, thread, run and node did what without a join. Fixed at open.
   */
  private readonly runContext: { run?: RunContext; run_hints?: RunContext };
  /** The approval an operation of this session is held on, if any. */
  heldApproval?: string;
  /** Budgets charged by this session's results; absent or empty: none apply. */
  meter?: SessionMeter;
  /** Set once the session is open: its token's deadline. */
  lifetime?: SessionLifetime;
  private closed = false;

  constructor(
    private readonly manager: SessionManager,
    input: OpenSessionInput,
    private readonly journal: Journal,
    caps: RecordingCaps | undefined,
  ) {
    this.id = randomUUID();
    this.principal = input.principal;
    this.record = {
      id: this.id,
      protocol: input.protocol,
      connection: input.connection,
      sub: input.principal.sub,
      groups: [...input.principal.groups],
      iss: input.principal.iss,
      ...(input.principal.jti !== undefined ? { jti: input.principal.jti } : {}),
      clientAddress: input.clientAddress,
      run: { ...input.principal.run },
      runHints: { ...(input.runHints ?? {}) },
      startedAt: new Date(),
    };
    const { run, runHints } = this.record;
    this.runContext = { ...(Object.keys(run).length ? { run } : {}), ...(Object.keys(runHints).length ? { run_hints: runHints } : {}) };
    if (caps) this.recorder = new SessionRecorder(this.id, this.record.startedAt.getTime(), caps, (r) => journal.markDirty(r));
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Ends the session in the wire's own way; the adapter then calls close(). */
  kill(reason: string, code: ErrorCode = "E_SESSION_KILLED"): void {
    if (!this.closed) this.manager.terminate(this, reason, code);
  }

  /**
   * An operation starts running at the target (the protocol says when: a Query or Sync sent, a
   * request forwarded); false once the token has expired, and then the session is being ended.
   */
  operationStarted(): boolean {
    return this.lifetime?.begin() ?? true;
  }

  /** The operation the protocol last started has been answered (or cut short). */
  operationFinished(): void {
    this.lifetime?.finish();
  }

  /** Audits and records a policy decision. An allowed operation goes to the target only once `durable` resolves. */
  decided(input: DecisionInput): OperationTicket {
    const at = new Date();
    this.manager.emit("decision", { ...input, session: this.id, at } satisfies DecisionEvent, this);
    // Readying an operation is not running it: only a refusal at this point is an operation of its own.
    if (input.phase === "prepare" && input.action !== "deny") return PREPARE_ONLY;
    const op = ++this.stats.operations;
    if (input.action === "deny") this.stats.denied++;
    const { type, summary, kinds, tables, functions } = input.operation;
    const refusal = input.action === "deny" ? undefined : this.manager.guard?.check(this, tables ?? []);
    const detail = { op, type, statement: summary, kinds, tables, functions, action: input.action, rule: input.rule, ...(refusal ? { refused: refusal.code } : {}) };
    this.recorder?.record({ e: "op", ...detail });
    const durable = this.journal.append({ type: "decision", session: this.id, at, data: { ...detail, ...this.runContext } });
    if (refusal) return { op, refusal };
    return input.action === "allow" && durable ? { op, durable } : { op };
  }

  /** An audit record about this session; the promise resolves once it is committed (undefined: nothing to wait for). */
  audit(entry: AuditEntry): Promise<void> | undefined {
    return this.journal.append(entry);
  }

  /** A capture for the rows of one result; undefined when recording is off (count rows yourself). */
  captureResult(): ResultCapture | undefined {
    return this.recorder ? new ResultCapture(this.recorder) : undefined;
  }

  /** A finished result (rows and bytes count toward the session's totals). */
  recordResult(event: ResultEvent): void {
    this.stats.rows += event.row_count;
    this.stats.bytes += event.bytes;
    this.recorder?.record(event);
  }

  recordMessage(event: MessageEvent): void {
    this.recorder?.record(event);
  }

  private readonly endingHooks: ((reason: string) => void)[] = [];

  /** Runs just before the session's end is recorded (a stage flushing a result cut short), with the end's reason. */
  beforeEnd(hook: (reason: string) => void): void {
    this.endingHooks.push(hook);
  }

  /** Records the end. Idempotent: the first reason wins. */
  close(reason: string): void {
    if (this.closed) return;
    this.closed = true;
    this.lifetime?.stop();
    for (const hook of this.endingHooks) hook(reason);
    this.manager.onClosed(this, reason);
  }
}

export class SessionManager extends EventEmitter {
  private readonly live = new Map<string, Session>();
  private readonly terminators = new WeakMap<Session, (reason: string, code: ErrorCode) => void>();

  constructor(private readonly o: SessionManagerOptions) {
    super();
  }

  get guard(): OperationGuard | undefined {
    return this.o.guard;
  }

  /**
   * Write-ahead: the session's row and its `session_open` record are committed before this
   * resolves, so no byte reaches the target for a session the audit log does not know.
   * Rejects with E_AUDIT_UNAVAILABLE when they cannot be.
   */
  async open(input: OpenSessionInput): Promise<Session> {
    const session = new Session(this, input, this.o.journal, this.o.recording());
    this.terminators.set(session, input.terminate);
    const meter = this.o.meter?.(input.principal, input.connection);
    if (meter && !meter.empty) session.meter = meter;
    const r = session.record;
    await this.o.journal.openSession(r, {
      type: "session_open",
      session: session.id,
      at: r.startedAt,
      data: { protocol: r.protocol, connection: r.connection, sub: r.sub, groups: r.groups, iss: r.iss, jti: r.jti, client: r.clientAddress, run: r.run, run_hints: r.runHints },
    });
    session.recorder?.record({
      e: "start", at: r.startedAt.toISOString(), protocol: r.protocol, connection: r.connection, sub: r.sub, groups: r.groups, iss: r.iss,
      client: r.clientAddress, run: r.run, run_hints: r.runHints,
    });
    this.live.set(session.id, session);
    // A session cannot outlive its token (SPEC §3), nor its issuer's max_token_age.
    if (!session.isClosed) session.lifetime = new SessionLifetime(input.principal, this.o.expiryGrace ?? (() => 0), () => session.kill("token expired", "E_TOKEN_EXPIRED"));
    this.emit("opened", session);
    return session;
  }

  /** Live sessions, oldest first. */
  list(): Session[] {
    return [...this.live.values()];
  }

  get(id: string): Session | undefined {
    return this.live.get(id);
  }

  /** Kills one live session; false when no live session has that id. */
  kill(id: string, reason: string, code: ErrorCode = "E_SESSION_KILLED"): boolean {
    const s = this.live.get(id);
    if (!s) return false;
    s.kill(reason, code);
    return true;
  }

  /** Kills every live session; used at shutdown. */
  killAll(reason: string): void {
    for (const s of this.live.values()) s.kill(reason);
  }

  /** @internal called by Session.kill */
  terminate(session: Session, reason: string, code: ErrorCode): void {
    this.terminators.get(session)?.(reason, code);
  }

  /** @internal called by Session.close */
  onClosed(session: Session, reason: string): void {
    const registered = this.live.delete(session.id);
    const endedAt = new Date();
    session.record.endedAt = endedAt;
    session.record.endReason = reason;
    session.record.stats = { ...session.stats };
    // A session whose opening was refused by the journal has no row to end.
    if (registered) {
      session.recorder?.record({ e: "end", at: endedAt.toISOString(), reason, stats: session.record.stats });
      this.o.journal.endSession(
        { id: session.id, endedAt, reason, stats: session.record.stats },
        { type: "session_close", session: session.id, at: endedAt, data: { reason, ...session.record.stats } },
      );
    }
    this.emit("closed", session, reason);
  }
}
