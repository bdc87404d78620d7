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
}

export interface SessionFilter {
  sub?: string;
  connection?: string;
  live?: boolean;
  since?: Date;
  limit?: number;
}

export interface Store {
  /** Applies pending migrations; idempotent. */
  migrate(): void;
  /** Cheap liveness check for /readyz. */
  ping(): boolean;
  createSession(rec: SessionRecord): void;
  endSession(id: string, endedAt: Date, reason: string): void;
  getSession(id: string): SessionRecord | undefined;
  listSessions(filter?: SessionFilter): SessionRecord[];
  close(): void;
}
