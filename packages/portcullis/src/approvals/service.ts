/**
 * Approvals: requests, decisions, waits and grants. State lives in the store (a pending approval
 * survives a restart); waiters live in memory (a held statement does not). Every step is an audit
 * record.
 *
 * Binding rules, enforced here and nowhere else:
 *  - the requester can never approve or deny their own request, whatever groups they are in;
 *  - each approver counts once (N of M means N different people);
 *  - only members of the rule's approver groups (or the configured admins) may decide;
 *  - a revoked person decides nothing, and the votes they cast before the revocation stop
 *    counting (a pending approval they voted for needs that many other approvers again);
 *  - nothing on a frozen connection is approved (denying stays possible);
 *  - an approval is visible to its requester, its approver groups and admins only.
 *  - a grant is spent by the requester's identity, on the same connection, for the same operation.
 */
import { createHash, randomBytes, randomUUID } from "node:crypto";
import { EventEmitter } from "node:events";
import type { AuditEntry } from "../audit/chain.js";
import type { ApprovalSettings } from "../config/schema.js";
import type { Logger } from "../core/logger.js";
import { PortcullisError } from "../errors.js";
import { type Principal, memberOf } from "../identity/principal.js";
import type { ApprovalState, GrantRow, Store } from "../store/store.js";
import { type Approval, type ApprovalOperation, type Vote, fromRow, toRow } from "./approval.js";

export interface ApprovalRequest {
  principal: Principal;
  session: string;
  connection: string;
  rule: Omit<ApprovalSettings, "hold_timeout">;
  operation: ApprovalOperation;
  onceKey: string;
  windowKey: string;
  mode: "hold" | "defer";
}

export interface ApprovalServiceOptions {
  store: Store;
  audit: (entry: AuditEntry) => void;
  logger: Logger;
  /** Groups that may decide any approval (identity.admins), read when a decision arrives. */
  admins: () => readonly string[];
  /** Containment's word on the acting person and the connection, asked at every decision and count. */
  standing: ApprovalStanding;
  /** How often pending approvals are checked for expiry. */
  sweepMs?: number;
  /** Approvals one identity may have pending at once (approvals.max_pending_per_identity). */
  maxPendingPerIdentity?: () => number;
}

export interface ApprovalStanding {
  /** Whether a revocation (subject, jti, group, issuer) covers this person now. */
  revoked(p: Principal): boolean;
  frozen(connection: string): boolean;
}

/** How far back a non-admin's listing looks for approvals they may see (newest first). */
const VISIBLE_SCAN = 10_000;

type Waiter = (a: Approval) => void;

export class ApprovalService extends EventEmitter {
  private readonly waiters = new Map<string, Set<Waiter>>();
  private readonly sweeper: NodeJS.Timeout;

  constructor(private readonly o: ApprovalServiceOptions) {
    super();
    this.sweeper = setInterval(() => this.sweep(), o.sweepMs ?? 1000);
    this.sweeper.unref();
  }

  /** At start: held requests died with the previous process; deferred ones live on. */
  recover(): number {
    let n = 0;
    for (const a of this.list({ state: "pending" })) {
      if (a.mode === "hold") {
        this.finish(a, "cancelled", "the gateway restarted while the operation was held");
        n++;
      }
    }
    return n;
  }

  /** Whether `who` already has as many approvals pending as it may. */
  atPendingLimit(who: Principal): boolean {
    const max = this.o.maxPendingPerIdentity?.();
    if (max === undefined) return false;
    let pending = 0;
    for (const a of this.list({ state: "pending" })) if (this.isRequester(a, who) && ++pending >= max) return true;
    return false;
  }

  request(req: ApprovalRequest): Approval {
    const now = new Date();
    const a: Approval = {
      id: randomUUID(),
      state: "pending",
      createdAt: now.toISOString(),
      expiresAt: new Date(now.getTime() + req.rule.expires_after).toISOString(),
      requester: { sub: req.principal.sub, groups: [...req.principal.groups], iss: req.principal.iss },
      session: req.session,
      connection: req.connection,
      run: { ...req.principal.run },
      rule: req.rule.name,
      approvers: [...req.rule.approvers],
      minApprovals: req.rule.min_approvals,
      grant: req.rule.grant,
      mode: req.mode,
      operation: req.operation,
      onceKey: req.onceKey,
      windowKey: req.windowKey,
      votes: [],
    };
    this.o.store.saveApproval(toRow(a));
    this.o.audit({
      type: "approval_requested", session: a.session,
      data: { approval: a.id, rule: a.rule, connection: a.connection, sub: a.requester.sub, mode: a.mode, operation: a.operation, approvers: a.approvers, min_approvals: a.minApprovals },
    });
    this.o.logger.info({ approval: a.id, rule: a.rule, sub: a.requester.sub, connection: a.connection, mode: a.mode }, "approval requested");
    this.emit("requested", a);
    return a;
  }

  get(id: string): Approval | undefined {
    const row = this.o.store.getApproval(id);
    return row ? this.expireIfDue(fromRow(row)) : undefined;
  }

  list(filter: { state?: ApprovalState; limit?: number } = {}): Approval[] {
    return this.o.store.listApprovals(filter).map(fromRow);
  }

  /** Whether `who` may see and cancel this approval: its requester, a member of its approver groups, an admin. */
  visibleTo(a: Approval, who: Principal): boolean {
    return this.isRequester(a, who) || memberOf(who, a.approvers) || memberOf(who, this.o.admins());
  }

  isRequester(a: Approval, who: Principal): boolean {
    return a.requester.sub === who.sub && a.requester.iss === who.iss;
  }

  /** The approvals `who` may see, newest first. */
  listFor(who: Principal, filter: { state?: ApprovalState; limit?: number } = {}): Approval[] {
    if (memberOf(who, this.o.admins())) return this.list(filter);
    const limit = filter.limit ?? 100;
    const scanned = this.list({ ...(filter.state ? { state: filter.state } : {}), limit: VISIBLE_SCAN });
    return scanned.filter((a) => this.visibleTo(a, who)).slice(0, Math.max(0, limit));
  }

  /** Approving votes that count now: one per person, none of a person revoked since they voted. */
  countedApprovals(a: Approval): number {
    return a.votes.filter((v) => v.decision === "approve" && !this.o.standing.revoked(voter(v))).length;
  }

  /** Records one person's decision; the approval closes when enough approve, or as soon as one denies. */
  decide(id: string, approver: Principal, decision: "approve" | "deny", reason?: string): Approval {
    const a = this.get(id);
    if (!a) throw new PortcullisError("E_APPROVAL_NOT_FOUND", `no approval ${id}`);
    if (a.state !== "pending") throw new PortcullisError("E_APPROVAL_CLOSED", `approval ${id} is already ${a.state}`);
    // Also checked by every caller (they raise the alert); here so that no path can skip it.
    if (this.o.standing.revoked(approver)) throw new PortcullisError("E_REVOKED", "identity revoked");
    if (decision === "approve" && this.o.standing.frozen(a.connection)) {
      throw new PortcullisError("E_FROZEN", `connection "${a.connection}" is frozen: nothing on it can be approved`);
    }
    // By subject alone, across issuers: stricter than sub+iss, and a person is one vote however they log in.
    if (approver.sub === a.requester.sub) {
      throw new PortcullisError("E_APPROVAL_FORBIDDEN", "the requester cannot decide their own approval");
    }
    if (!memberOf(approver, a.approvers) && !memberOf(approver, this.o.admins())) {
      throw new PortcullisError("E_APPROVAL_FORBIDDEN", `only members of ${a.approvers.join(", ")} may decide approval ${id}`);
    }
    if (a.votes.some((v) => v.sub === approver.sub)) {
      throw new PortcullisError("E_APPROVAL_FORBIDDEN", `${approver.sub} has already decided approval ${id}; another approver is needed`);
    }
    a.votes.push({
      sub: approver.sub, iss: approver.iss, groups: [...approver.groups], ...(approver.jti !== undefined ? { jti: approver.jti } : {}),
      decision, ...(reason ? { reason } : {}), at: new Date().toISOString(),
    });
    this.o.audit({ type: "approval_vote", session: a.session, data: { approval: a.id, by: approver.sub, iss: approver.iss, decision, reason } });
    if (decision === "deny") return this.finish(a, "denied", reason ?? `denied by ${approver.sub}`);
    if (this.countedApprovals(a) >= a.minApprovals) return this.finish(a, "approved", undefined);
    this.o.store.saveApproval(toRow(a));
    return a;
  }

  /** One-time approve and deny codes per recipient, for e-mail links; only their hashes are kept. */
  issueLinks(id: string, recipients: readonly string[]): Map<string, { approve: string; deny: string }> {
    const a = this.get(id);
    const out = new Map<string, { approve: string; deny: string }>();
    if (!a) return out;
    a.links ??= [];
    for (const recipient of recipients) {
      const codes = { approve: randomBytes(24).toString("base64url"), deny: randomBytes(24).toString("base64url") };
      for (const action of ["approve", "deny"] as const) a.links.push({ recipient, action, hash: sha256(codes[action]), used: false });
      out.set(recipient, codes);
    }
    this.o.store.saveApproval(toRow(a));
    return out;
  }

  /** Whether `code` is an unused link for this approval and action (it is not spent here). */
  linkValid(id: string, action: "approve" | "deny", code: string): boolean {
    const h = sha256(code);
    return this.get(id)?.links?.some((l) => l.action === action && !l.used && l.hash === h) ?? false;
  }

  /**
   * Decides through an e-mail link: the code must be unused, and the approver, who authenticated
   * separately, is held to the same rules as anywhere else. Both links of that recipient are spent.
   */
  decideByLink(id: string, action: "approve" | "deny", code: string, approver: Principal): Approval {
    if (!this.linkValid(id, action, code)) throw new PortcullisError("E_APPROVAL_FORBIDDEN", "this link is not valid or was already used");
    const decided = this.decide(id, approver, action, `via e-mail link by ${approver.sub}`);
    const h = sha256(code);
    const latest = this.get(id)!;
    const recipient = latest.links?.find((l) => l.hash === h)?.recipient;
    for (const l of latest.links ?? []) if (l.recipient === recipient) l.used = true;
    this.o.store.saveApproval(toRow(latest));
    return { ...decided, links: latest.links ?? [] };
  }

  /** Cancels a pending approval (the client cancelled, the session ended); no-op otherwise. */
  cancel(id: string, reason: string): void {
    const a = this.get(id);
    if (a?.state === "pending") this.finish(a, "cancelled", reason);
  }

  /**
   * Resolves with the approval once it is no longer pending; after `timeoutMs` a still pending
   * approval expires (the hold timeout).
   */
  wait(id: string, timeoutMs: number): Promise<Approval> {
    const current = this.get(id);
    if (!current || current.state !== "pending") {
      return current ? Promise.resolve(current) : Promise.reject(new PortcullisError("E_APPROVAL_NOT_FOUND", `no approval ${id}`));
    }
    return new Promise<Approval>((resolve) => {
      const timer = setTimeout(() => {
        const a = this.get(id);
        if (a?.state === "pending") this.finish(a, "expired", "hold timeout");
      }, timeoutMs);
      timer.unref();
      const waiter: Waiter = (a) => {
        clearTimeout(timer);
        resolve(a);
      };
      let set = this.waiters.get(id);
      if (!set) this.waiters.set(id, (set = new Set()));
      set.add(waiter);
    });
  }

  /** Spends a grant matching this identity, connection and operation, if there is one (the caller audits the use). */
  useGrant(principal: Principal, connection: string, onceKey: string, windowKey: string): GrantRow | undefined {
    return this.o.store.useGrant({ sub: principal.sub, iss: principal.iss, connection, onceKey, windowKey, now: Date.now() });
  }

  close(): void {
    clearInterval(this.sweeper);
  }

  private finish(a: Approval, state: Exclude<ApprovalState, "pending">, reason: string | undefined): Approval {
    a.state = state;
    a.decidedAt = new Date().toISOString();
    if (reason) a.reason = reason;
    this.o.store.saveApproval(toRow(a));
    if (state === "approved") this.createGrant(a);
    this.o.audit({ type: "approval_decided", session: a.session, data: { approval: a.id, state, reason, votes: a.votes.map((v) => ({ by: v.sub, decision: v.decision })) } });
    this.o.logger.info({ approval: a.id, state, reason }, "approval decided");
    this.emit("decided", a);
    const set = this.waiters.get(a.id);
    this.waiters.delete(a.id);
    for (const w of set ?? []) w(a);
    return a;
  }

  private createGrant(a: Approval): void {
    const now = Date.now();
    const once = a.grant.kind === "once";
    this.o.store.createGrant({
      id: randomUUID(),
      approval: a.id,
      sub: a.requester.sub,
      iss: a.requester.iss,
      connection: a.connection,
      kind: a.grant.kind,
      key: once ? a.onceKey : a.windowKey,
      usesLeft: once ? 1 : null,
      // A single-use grant waits for its retry as long as the request itself could have waited.
      expiresAt: once ? now + (Date.parse(a.expiresAt) - Date.parse(a.createdAt)) : now + (a.grant as { ms: number }).ms,
    });
  }

  private expireIfDue(a: Approval): Approval {
    if (a.state === "pending" && Date.parse(a.expiresAt) <= Date.now()) return this.finish(a, "expired", "not decided in time");
    return a;
  }

  private sweep(): void {
    try {
      for (const a of this.list({ state: "pending" })) this.expireIfDue(a);
    } catch (err) {
      this.o.logger.warn({ err: (err as Error).message }, "approval expiry sweep failed");
    }
  }
}

/** The person behind a stored vote, as far as revocations can match it. */
function voter(v: Vote): Principal {
  return { sub: v.sub, iss: v.iss, groups: v.groups ?? [], ...(v.jti !== undefined ? { jti: v.jti } : {}), exp: 0, run: {} };
}

function sha256(s: string): string {
  return createHash("sha256").update(s).digest("hex");
}
