/**
 * Refused logins as audit records (`login_refused`), not only log lines: a bad or expired token,
 * or a valid one without access to the connection. A record names the protocol, the connection
 * asked for, the client address, the reason code and, when the token was valid, the subject and
 * issuer; never the token, and never the verifier's message (it can quote attacker input).
 *
 * Refusals cost an attacker nothing, so they must not fill the store. Per window (a minute):
 *  - the first refusal of each kind (protocol, source, reason, connection, subject) is written at
 *    once, up to `perSource` records per source (an IPv4 address or an IPv6 /64) and `total`
 *    records in all;
 *  - everything beyond is counted, and when the window ends one `login_refused` record with
 *    `summary: true` says how many were not written one by one, with the busiest sources.
 * So the store takes at most total + 1 records a window, whatever the flood.
 */
import type { AuditEntry } from "../audit/chain.js";
import type { ErrorCode } from "../errors.js";
import type { Protocol } from "../store/store.js";
import { sourceKey } from "./connection-limits.js";

export interface LoginRefusal {
  protocol: Protocol;
  /** The connection (database, HTTP connection name) the client asked for. */
  connection: string;
  /** host:port as sessions record it. */
  client: string;
  reason: ErrorCode;
  /** Known when the token was valid (a refusal for lack of access). */
  sub?: string;
  iss?: string;
}

export interface LoginRefusalLimits {
  windowMs: number;
  /** Records written one by one per source and window. */
  perSource: number;
  /** Records written one by one per window, all sources together. */
  total: number;
  /** Sources named in a window's summary (the busiest). */
  summarySources: number;
}

export const LOGIN_REFUSAL_LIMITS: LoginRefusalLimits = { windowMs: 60_000, perSource: 20, total: 200, summarySources: 20 };

/** Distinct suppressed keys remembered per window; beyond, they are only counted. */
const MAX_TRACKED = 1_000;

export class LoginRefusals {
  private windowStart = -Infinity;
  /** Kinds already written this window. */
  private readonly written = new Set<string>();
  private readonly perSource = new Map<string, number>();
  private writtenTotal = 0;
  /** protocol, source and reason → refusals not written one by one. */
  private readonly suppressed = new Map<string, { protocol: Protocol; source: string; reason: ErrorCode; count: number }>();
  private suppressedTotal = 0;
  private timer?: NodeJS.Timeout;

  constructor(
    private readonly audit: (entry: AuditEntry) => void,
    private readonly limits: LoginRefusalLimits = LOGIN_REFUSAL_LIMITS,
    private readonly now: () => number = Date.now,
  ) {}

  record(r: LoginRefusal): void {
    const now = this.now();
    if (now >= this.windowStart + this.limits.windowMs) this.roll(now);
    const source = sourceKey(hostOf(r.client));
    const kind = JSON.stringify([r.protocol, source, r.reason, r.connection, r.sub ?? null, r.iss ?? null]);
    const fromSource = this.perSource.get(source) ?? 0;
    if (!this.written.has(kind) && fromSource < this.limits.perSource && this.writtenTotal < this.limits.total) {
      this.written.add(kind);
      this.perSource.set(source, fromSource + 1);
      this.writtenTotal++;
      this.audit({
        type: "login_refused",
        data: { protocol: r.protocol, connection: r.connection.slice(0, 200), client: r.client, reason: r.reason, ...(r.sub !== undefined ? { sub: r.sub, iss: r.iss } : {}) },
      });
      return;
    }
    this.suppressedTotal++;
    const key = `${r.protocol} ${source} ${r.reason}`;
    const entry = this.suppressed.get(key);
    if (entry) entry.count++;
    else if (this.suppressed.size < MAX_TRACKED) this.suppressed.set(key, { protocol: r.protocol, source, reason: r.reason, count: 1 });
    if (!this.timer) {
      // Only while something is owed, and never keeping the process alive for it.
      this.timer = setTimeout(() => this.flush(), Math.max(0, this.windowStart + this.limits.windowMs - now));
      this.timer.unref();
    }
  }

  /** Writes the summary of the current window, if anything was suppressed, and starts a new window. */
  flush(): void {
    this.roll(this.now());
  }

  /** At shutdown: what is owed is written now. */
  close(): void {
    this.flush();
  }

  private roll(now: number): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.suppressedTotal > 0) {
      const busiest = [...this.suppressed.values()].sort((a, b) => b.count - a.count).slice(0, this.limits.summarySources);
      this.audit({
        type: "login_refused",
        data: {
          summary: true,
          since: new Date(this.windowStart).toISOString(),
          until: new Date(now).toISOString(),
          // Refusals in the window not written one by one (repeats, and those over the caps).
          count: this.suppressedTotal,
          sources: busiest,
        },
      });
    }
    this.windowStart = now;
    this.written.clear();
    this.perSource.clear();
    this.writtenTotal = 0;
    this.suppressed.clear();
    this.suppressedTotal = 0;
  }
}

/** A socket's peer as sessions and refusals record it: host:port. */
export function clientAddressOf(socket: { remoteAddress?: string | undefined; remotePort?: number | undefined }): string {
  return `${socket.remoteAddress ?? "?"}:${socket.remotePort ?? 0}`;
}

/** The address part of host:port (IPv6 hosts contain colons; the port is always last). */
function hostOf(client: string): string {
  const i = client.lastIndexOf(":");
  return i > 0 ? client.slice(0, i) : client;
}
