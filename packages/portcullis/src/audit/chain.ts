/**
 * The hash chain of the audit log. Each record's hash covers its sequence number, time, type,
 * session, the previous record's hash and its canonical data, so changing, removing or reordering
 * any record breaks the link to every record after it.
 */
import { createHash } from "node:crypto";
import type { AuditRow } from "../store/store.js";
import { canonicalJson } from "./canonical.js";

/** `prev` of the first record. */
export const GENESIS = "0".repeat(64);

/** Security-relevant events (SPEC §6); later issues add approvals, revocations and alerts. */
export type AuditType =
  | "session_open"
  | "session_close"
  | "decision"
  | "config_reload"
  | "audit_unavailable"
  | "audit_restored"
  | "gateway_start"
  | "gateway_stop"
  | "admin"
  | "approval_requested"
  | "approval_vote"
  | "approval_decided"
  | "grant_used"
  | "alert"
  | "revoked"
  | "revocation_lifted"
  | "frozen"
  | "unfrozen"
  | "session_killed"
  | "login_refused";

export interface AuditEntry {
  type: AuditType;
  session?: string;
  data: Record<string, unknown>;
  at?: Date;
}

/** The record's hash: SHA-256 over its canonical header, a newline, and its canonical data. */
export function hashRecord(r: Omit<AuditRow, "hash">): string {
  const header = canonicalJson({ seq: r.seq, at: r.at, type: r.type, session: r.session, prev: r.prev });
  return createHash("sha256").update(header).update("\n").update(r.data).digest("hex");
}

/** The chain's head; rows are sealed against it and it advances only once they are committed. */
export class AuditChain {
  constructor(private head: { seq: number; hash: string } = { seq: 0, hash: GENESIS }) {}

  static after(last: AuditRow | undefined): AuditChain {
    return new AuditChain(last ? { seq: last.seq, hash: last.hash } : undefined);
  }

  get seq(): number {
    return this.head.seq;
  }

  get hash(): string {
    return this.head.hash;
  }

  /** Numbers and links entries after the head without moving it (a failed commit must leave it alone). */
  seal(entries: readonly AuditEntry[], now = Date.now()): AuditRow[] {
    let { seq, hash: prev } = this.head;
    return entries.map((e) => {
      const row: Omit<AuditRow, "hash"> = {
        seq: ++seq, at: e.at?.getTime() ?? now, type: e.type, session: e.session ?? null, data: canonicalJson(e.data), prev,
      };
      const hash = hashRecord(row);
      prev = hash;
      return { ...row, hash };
    });
  }

  /** Moves the head past rows that are now committed. */
  advance(rows: readonly Pick<AuditRow, "seq" | "hash">[]): void {
    const last = rows.at(-1);
    if (last) this.head = { seq: last.seq, hash: last.hash };
  }
}

/** An audit record as exported (JSONL) and sent to sinks. */
export interface ExportedRecord {
  seq: number;
  at: string;
  type: string;
  session: string | null;
  data: unknown;
  prev: string;
  hash: string;
}

export function exportRecord(r: AuditRow): ExportedRecord {
  return { seq: r.seq, at: new Date(r.at).toISOString(), type: r.type, session: r.session, data: JSON.parse(r.data) as unknown, prev: r.prev, hash: r.hash };
}
