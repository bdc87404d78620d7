/**
 * Revocations: a subject, a token (jti), a group or a whole issuer that may no longer act, with a
 * reason and an optional expiry. Kept in the store and mirrored in memory, because they are checked
 * at every session start and every operation and must cost a lookup, not a query.
 */
import { randomUUID } from "node:crypto";
import type { RevocationKind, RevocationRow, Store } from "../store/store.js";
import type { Principal } from "./principal.js";

export const REVOCATION_KINDS: readonly RevocationKind[] = ["subject", "jti", "group", "issuer"];

export interface RevokeInput {
  kind: RevocationKind;
  value: string;
  reason: string;
  by: string;
  /** ms since the epoch; absent: until lifted. */
  expiresAt?: number;
}

export class RevocationList {
  private active: RevocationRow[] = [];

  constructor(private readonly store: Store) {
    this.reload();
  }

  reload(): void {
    this.active = this.store.listRevocations(false);
  }

  /** The revocation that stops this principal now, if any. */
  matches(p: Principal, now = Date.now()): RevocationRow | undefined {
    if (this.active.length === 0) return undefined;
    return this.active.find((r) => (r.expiresAt === null || r.expiresAt > now) && covers(r, p));
  }

  revoke(input: RevokeInput): RevocationRow {
    const row: RevocationRow = {
      id: randomUUID(), kind: input.kind, value: input.value, reason: input.reason, createdBy: input.by,
      createdAt: Date.now(), expiresAt: input.expiresAt ?? null, liftedAt: null, liftedBy: null,
    };
    this.store.saveRevocation(row);
    this.active.unshift(row);
    return row;
  }

  /** Lifts a revocation; undefined when there is no such active one. */
  lift(id: string, by: string): RevocationRow | undefined {
    const row = this.active.find((r) => r.id === id);
    if (!row) return undefined;
    const lifted = { ...row, liftedAt: Date.now(), liftedBy: by };
    this.store.saveRevocation(lifted);
    this.active = this.active.filter((r) => r.id !== id);
    return lifted;
  }

  list(includeLifted = false): RevocationRow[] {
    return includeLifted ? this.store.listRevocations(true) : [...this.active];
  }
}

export function covers(r: Pick<RevocationRow, "kind" | "value">, p: Principal): boolean {
  switch (r.kind) {
    case "subject": return p.sub === r.value;
    case "jti": return p.jti === r.value;
    case "group": return p.groups.includes(r.value);
    case "issuer": return p.iss === r.value;
  }
}
