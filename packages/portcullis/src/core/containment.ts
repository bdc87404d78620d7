/**
 * Containment: what a responder does to stop an identity or a target now. Revoking kills every
 * live session the revocation covers (PX003 on PostgreSQL) and refuses new ones; freezing a
 * connection kills its sessions and refuses new ones until unfrozen; a single session can be
 * killed. Every operation is also checked (a revocation that lands mid-session ends it at its next
 * statement at the latest) and charged against budgets. Every step is audited and alerted.
 */
import type { AuditEntry } from "../audit/chain.js";
import { PortcullisError } from "../errors.js";
import type { Principal } from "../identity/principal.js";
import { type RevocationList, type RevokeInput, covers } from "../identity/revocations.js";
import type { FreezeRow, RevocationRow, Store } from "../store/store.js";
import type { AlertBus } from "./alerts.js";
import type { Logger } from "./logger.js";
import type { OperationGuard, Refusal, Session, SessionManager } from "./sessions.js";

export interface ContainmentOptions {
  store: Store;
  sessions: SessionManager;
  revocations: RevocationList;
  alerts: AlertBus;
  audit: (entry: AuditEntry) => void;
  logger: Logger;
}

export class Containment implements OperationGuard {
  private frozen = new Map<string, FreezeRow>();

  constructor(private readonly o: ContainmentOptions) {
    for (const f of o.store.listFreezes()) this.frozen.set(f.connection, f);
  }

  /** At session start, after the token is verified: throws E_REVOKED or E_FROZEN. */
  admitSession(p: Principal, connection: string, clientAddress: string): void {
    const r = this.o.revocations.matches(p);
    if (r) {
      this.o.alerts.raise("revoked_identity_used", { sub: p.sub, iss: p.iss, jti: p.jti, connection, client: clientAddress, revocation: r.id, reason: r.reason }, `${p.iss} ${p.sub}`);
      // The agent learns that it is revoked, not why: the reason is for the audit log.
      throw new PortcullisError("E_REVOKED", "identity revoked");
    }
    const f = this.frozen.get(connection);
    if (f) throw new PortcullisError("E_FROZEN", `connection "${connection}" is frozen`);
  }

  /**
   * A person acting outside a session (the admin API, an approval decision by API, Slack or
   * e-mail link): throws E_REVOKED, with the same alert as a revoked agent's login.
   */
  admitActor(p: Principal, via: string, clientAddress: string): void {
    const r = this.o.revocations.matches(p);
    if (!r) return;
    this.o.alerts.raise("revoked_identity_used", { sub: p.sub, iss: p.iss, jti: p.jti, via, client: clientAddress, revocation: r.id, reason: r.reason }, `${p.iss} ${p.sub}`);
    throw new PortcullisError("E_REVOKED", "identity revoked");
  }

  /** Whether a revocation covers this person now (an approval's earlier votes are counted with it). */
  isRevoked(p: Principal): boolean {
    return this.o.revocations.matches(p) !== undefined;
  }

  isFrozen(connection: string): boolean {
    return this.frozen.has(connection);
  }

  /** Before every operation: a revocation ends the session; a spent budget refuses the operation. */
  check(session: Session, tables: readonly string[]): Refusal | undefined {
    const r = this.o.revocations.matches(session.principal);
    if (r) {
      // Ended at once; the refusal is what the operation gets in the meantime.
      queueMicrotask(() => session.kill(r.reason, "E_REVOKED"));
      return { code: "E_REVOKED", message: "portcullis: identity revoked" };
    }
    const over = session.meter?.admit(tables);
    if (over) {
      this.budgetExceeded(session, over);
      return { code: "E_BUDGET_EXCEEDED", message: `portcullis: budget ${over.budget} exceeded (${over.measure} per hour: ${over.limit})` };
    }
    return undefined;
  }

  /** A result crossed a budget mid-stream. */
  budgetExceeded(session: Session, over: { budget: string; scope: string; measure: string; limit: number }): void {
    this.o.alerts.raise("budget_exceeded", { session: session.id, sub: session.principal.sub, connection: session.record.connection, ...over }, `${over.budget} ${over.scope}`);
  }

  revoke(input: RevokeInput): { revocation: RevocationRow; killed: number } {
    const revocation = this.o.revocations.revoke(input);
    this.o.audit({ type: "revoked", data: { id: revocation.id, kind: input.kind, value: input.value, reason: input.reason, by: input.by, expires_at: input.expiresAt } });
    let killed = 0;
    for (const s of this.o.sessions.list()) {
      if (!covers(revocation, s.principal)) continue;
      this.kill(s, input.by, `identity revoked: ${input.reason}`, "E_REVOKED");
      killed++;
    }
    this.o.logger.warn({ revocation: revocation.id, kind: input.kind, killed }, "revoked");
    return { revocation, killed };
  }

  lift(id: string, by: string): RevocationRow | undefined {
    const lifted = this.o.revocations.lift(id, by);
    if (lifted) this.o.audit({ type: "revocation_lifted", data: { id, by } });
    return lifted;
  }

  freeze(connection: string, reason: string, by: string): number {
    const f: FreezeRow = { connection, reason, createdBy: by, createdAt: Date.now() };
    this.o.store.saveFreeze(f);
    this.frozen.set(connection, f);
    this.o.audit({ type: "frozen", data: { connection, reason, by } });
    let killed = 0;
    for (const s of this.o.sessions.list()) {
      if (s.record.connection !== connection) continue;
      this.kill(s, by, `connection frozen: ${reason}`, "E_FROZEN");
      killed++;
    }
    this.o.logger.warn({ connection, killed }, "connection frozen");
    return killed;
  }

  unfreeze(connection: string, by: string): boolean {
    const was = this.o.store.deleteFreeze(connection);
    this.frozen.delete(connection);
    if (was) this.o.audit({ type: "unfrozen", data: { connection, by } });
    return was;
  }

  revocations(includeLifted = false): RevocationRow[] {
    return this.o.revocations.list(includeLifted);
  }

  freezes(): FreezeRow[] {
    return [...this.frozen.values()];
  }

  /** Kills one live session by id; false when there is none. */
  killSession(id: string, by: string, reason: string): boolean {
    const s = this.o.sessions.get(id);
    if (!s) return false;
    this.kill(s, by, reason, "E_SESSION_KILLED");
    return true;
  }

  private kill(s: Session, by: string, reason: string, code: "E_REVOKED" | "E_FROZEN" | "E_SESSION_KILLED"): void {
    this.o.audit({ type: "session_killed", session: s.id, data: { by, reason, code } });
    this.o.alerts.raise("session_killed", { session: s.id, sub: s.principal.sub, connection: s.record.connection, by, reason }, s.id);
    s.kill(reason, code);
  }
}
