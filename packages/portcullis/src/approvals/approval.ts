/**
 * The approval model. An Approval is a request for a human to let one operation run; it moves
 * pending → approved | denied | expired | cancelled, and an approved one produces a Grant: single-use
 * and bound to the requester's identity, the connection and the exact operation, or, when the rule
 * says `grant: window 30m`, to the operation's shape for that long.
 */
import type { Grant } from "../config/schema.js";
import type { RunContext } from "../identity/principal.js";
import type { ApprovalRow, ApprovalState } from "../store/store.js";

export interface Vote {
  sub: string;
  iss: string;
  /**
   * The voter's groups and token id when they voted, so that a revocation by group or jti that
   * lands later still finds the vote (votes stored before these were kept have neither).
   */
  groups?: string[];
  jti?: string;
  decision: "approve" | "deny";
  reason?: string;
  at: string;
}

export interface ApprovalOperation {
  type: "sql" | "http" | "ssh";
  /** What the approver reads: the operation with sensitive values masked. */
  display: string;
  kinds?: string[];
  tables?: string[];
}

export interface Approval {
  id: string;
  state: ApprovalState;
  createdAt: string;
  expiresAt: string;
  decidedAt?: string;
  /** Why it ended: the denier's reason, "hold timeout", "cancelled by the client"... */
  reason?: string;
  requester: { sub: string; groups: string[]; iss: string };
  session: string;
  connection: string;
  run: RunContext;
  rule: string;
  approvers: string[];
  minApprovals: number;
  grant: Grant;
  mode: "hold" | "defer";
  operation: ApprovalOperation;
  /** Hash of the exact operation (single-use grants) and of its shape (window grants). */
  onceKey: string;
  windowKey: string;
  votes: Vote[];
  /** One-time decision links sent by e-mail: SHA-256 of each code, never the code itself. */
  links?: { recipient: string; action: "approve" | "deny"; hash: string; used: boolean }[];
}

export function toRow(a: Approval): ApprovalRow {
  const { id, state, createdAt, expiresAt, ...rest } = a;
  return { id, state, createdAt: Date.parse(createdAt), expiresAt: Date.parse(expiresAt), body: JSON.stringify(rest) };
}

export function fromRow(r: ApprovalRow): Approval {
  return { id: r.id, state: r.state, createdAt: new Date(r.createdAt).toISOString(), expiresAt: new Date(r.expiresAt).toISOString(), ...(JSON.parse(r.body) as Omit<Approval, "id" | "state" | "createdAt" | "expiresAt">) };
}

/** What the admin API, CLI and notifiers show: no binding keys. */
export function publicView(a: Approval): Omit<Approval, "onceKey" | "windowKey" | "links"> {
  const { onceKey: _o, windowKey: _w, links: _l, ...rest } = a;
  return rest;
}
