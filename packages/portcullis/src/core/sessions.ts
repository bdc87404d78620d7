/**
 * Session lifecycle and the live-session registry. An adapter opens a Session once the agent is
 * authenticated and authorised for a connection, and closes it exactly once, however it ends.
 * The registry is how an operator (and later revocation, freeze, token expiry) reaches a live
 * session: `kill` asks the adapter, through its `terminate` callback, to end it in the wire's own way.
 */
import { randomUUID } from "node:crypto";
import { EventEmitter } from "node:events";
import type { Principal, RunContext } from "../identity/principal.js";
import type { Protocol, SessionRecord, Store } from "../store/store.js";

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
    /** Statement text with literals replaced by $n; only computed when someone will read it. */
    summary?: string;
  };
  action: "allow" | "deny" | "approve";
  rule?: string;
}

export interface OpenSessionInput {
  protocol: Protocol;
  connection: string;
  principal: Principal;
  clientAddress: string;
  runHints?: RunContext;
  /** Called by kill(): the adapter ends the session with a wire-level error and closes it. */
  terminate: (reason: string) => void;
}

export class Session {
  readonly id: string;
  readonly record: SessionRecord;
  readonly principal: Principal;
  private closed = false;

  constructor(
    private readonly manager: SessionManager,
    input: OpenSessionInput,
    private readonly terminateFn: (reason: string) => void,
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
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /** Ends the session in the wire's own way; the adapter then calls close(). */
  kill(reason: string): void {
    if (!this.closed) this.terminateFn(reason);
  }

  /** Hands a policy decision to the core (recording and audit subscribe to "decision"). */
  decided(event: Omit<DecisionEvent, "session" | "at">): void {
    this.manager.emit("decision", { ...event, session: this.id, at: new Date() } satisfies DecisionEvent, this);
  }

  /** Records the end. Idempotent: the first reason wins. */
  close(reason: string): void {
    if (this.closed) return;
    this.closed = true;
    this.manager.onClosed(this, reason);
  }
}

export class SessionManager extends EventEmitter {
  private readonly live = new Map<string, Session>();

  constructor(private readonly store: Store) {
    super();
  }

  open(input: OpenSessionInput): Session {
    const session = new Session(this, input, input.terminate);
    // Write-ahead: the session exists in the store before any byte reaches the target.
    this.store.createSession(session.record);
    this.live.set(session.id, session);
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
  kill(id: string, reason: string): boolean {
    const s = this.live.get(id);
    if (!s) return false;
    s.kill(reason);
    return true;
  }

  /** Kills every live session; used at shutdown. */
  killAll(reason: string): void {
    for (const s of this.live.values()) s.kill(reason);
  }

  /** @internal called by Session.close */
  onClosed(session: Session, reason: string): void {
    this.live.delete(session.id);
    const endedAt = new Date();
    session.record.endedAt = endedAt;
    session.record.endReason = reason;
    this.store.endSession(session.id, endedAt, reason);
    this.emit("closed", session, reason);
  }
}
