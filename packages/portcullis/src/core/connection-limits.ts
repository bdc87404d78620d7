/**
 * Limits that keep one client from taking the gateway's file descriptors or memory, for any
 * agent-facing listener: how many connections may be open at once, how many of them may still be
 * unauthenticated (in total and per source), and how many bytes all sessions together may hold
 * buffered. Protocol-neutral: an adapter asks `admit` when it accepts a socket, reports when the
 * connection authenticated and when it closed, and takes a `BufferLease` for what it buffers.
 * Caps are read per use, so a config reload applies to the next connection.
 */
import type { Socket } from "node:net";
import type { GatewayMetrics } from "./metrics.js";
import type { Logger } from "./logger.js";

export interface ConnectionCaps {
  maxConnections: number;
  maxUnauthenticated: number;
  maxUnauthenticatedPerSource: number;
}

/** The config names of the limits, which are also the metric's `limit` label values. */
export type LimitName =
  | "max_connections"
  | "max_unauthenticated"
  | "max_unauthenticated_per_source"
  | "authentication_timeout"
  | "request_timeout"
  | "max_buffered_bytes";

export interface ConnectionSlot {
  /** The connection proved who it is: it leaves the unauthenticated counts. Idempotent. */
  authenticated(): void;
  /** The connection closed. Idempotent. */
  release(): void;
}

export class ConnectionLimits {
  private total = 0;
  private unauthenticated = 0;
  /** Unauthenticated connections per source key; keys are deleted at zero so the map stays small. */
  private readonly perSource = new Map<string, number>();

  constructor(private readonly caps: () => ConnectionCaps, private readonly onCount?: (total: number, unauthenticated: number) => void) {}

  /** A slot for the connection, or the limit that refuses it. */
  admit(remoteAddress: string | undefined): ConnectionSlot | LimitName {
    const caps = this.caps();
    const source = sourceKey(remoteAddress);
    const fromSource = this.perSource.get(source) ?? 0;
    if (this.total >= caps.maxConnections) return "max_connections";
    // Before the global check, so the source that fills the gateway is the one told so.
    if (fromSource >= caps.maxUnauthenticatedPerSource) return "max_unauthenticated_per_source";
    if (this.unauthenticated >= caps.maxUnauthenticated) return "max_unauthenticated";
    this.total++;
    this.unauthenticated++;
    this.perSource.set(source, fromSource + 1);
    this.onCount?.(this.total, this.unauthenticated);
    let pending = true;
    let open = true;
    const leaveUnauthenticated = () => {
      if (!pending) return;
      pending = false;
      this.unauthenticated--;
      const n = (this.perSource.get(source) ?? 1) - 1;
      if (n > 0) this.perSource.set(source, n);
      else this.perSource.delete(source);
    };
    return {
      authenticated: () => {
        if (!open) return;
        leaveUnauthenticated();
        this.onCount?.(this.total, this.unauthenticated);
      },
      release: () => {
        if (!open) return;
        open = false;
        leaveUnauthenticated();
        this.total--;
        this.onCount?.(this.total, this.unauthenticated);
      },
    };
  }
}

/**
 * What counts as one source: the IPv4 address (also when IPv4-mapped), or the /64 an IPv6
 * address is in, since one IPv6 host usually has a whole /64 to pick addresses from.
 */
export function sourceKey(address: string | undefined): string {
  if (!address) return "?";
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return mapped[1]!;
  if (!address.includes(":")) return address;
  const [head = "", tail] = address.split("%")[0]!.split("::");
  const groups = (s: string) => (s ? s.split(":").flatMap((g) => (g.includes(".") ? ["0", "0"] : [g])) : []);
  const h = groups(head);
  const t = tail === undefined ? [] : groups(tail);
  const all = tail === undefined ? h : [...h, ...new Array<string>(Math.max(0, 8 - h.length - t.length)).fill("0"), ...t];
  return `${all.slice(0, 4).map((g) => Number.parseInt(g, 16).toString(16)).join(":")}::/64`;
}

/**
 * The bytes every session holds buffered together: partial messages, frames queued behind an
 * approval wait, handshake buffers. Each holder takes a lease and says how much it holds now;
 * growth past the budget is refused (the holder ends its session), shrinking always succeeds.
 */
export class BufferBudget {
  private used = 0;

  constructor(private readonly limit: () => number, private readonly onChange?: (used: number) => void) {}

  get inUse(): number {
    return this.used;
  }

  lease(): BufferLease {
    let held = 0;
    return {
      hold: (bytes: number) => {
        // The common case on the relay's hot path: nothing held before or after a chunk.
        if (bytes === held) return true;
        if (bytes > held && this.used - held + bytes > this.limit()) return false;
        this.used += bytes - held;
        held = bytes;
        this.onChange?.(this.used);
        return true;
      },
      release: () => {
        this.used -= held;
        held = 0;
        this.onChange?.(this.used);
      },
    };
  }
}

export interface BufferLease {
  /** This holder now keeps `bytes` buffered; false (and nothing changed) when the budget has no room. */
  hold(bytes: number): boolean;
  release(): void;
}

/** How often a limit that keeps biting is logged again (with the count since the last line). */
const LOG_INTERVAL_MS = 10_000;

/** Counts every time a limit bites and logs it, at most once per limit per interval: an attack must not flood the log. */
export class LimitReporter {
  private readonly last = new Map<LimitName, { at: number; suppressed: number }>();

  constructor(private readonly protocol: string, private readonly metrics: GatewayMetrics, private readonly logger: Logger) {}

  hit(limit: LimitName, source: string | undefined): void {
    this.metrics.connectionLimitHits.inc({ protocol: this.protocol, limit });
    const now = Date.now();
    const prev = this.last.get(limit);
    if (prev && now - prev.at < LOG_INTERVAL_MS) {
      prev.suppressed++;
      return;
    }
    this.last.set(limit, { at: now, suppressed: 0 });
    this.logger.warn(
      { protocol: this.protocol, limit, source: sourceKey(source), ...(prev ? { since_last_line: prev.suppressed } : {}) },
      `${this.protocol} connection limit reached: ${limit}`,
    );
  }
}

const REFUSAL_LINGER_MS = 1000;
const MAX_LINGERING = 64;

/**
 * Answers connections the limits refuse and closes them, parsing nothing they sent. A descriptor is
 * held only until what the client already sent is drained (closing on unread input would reset the
 * connection before the answer is read), at most REFUSAL_LINGER_MS, and not at all while
 * MAX_LINGERING others wait: a flood of refused connections must not take the descriptors.
 */
export class SocketRefuser {
  private lingering = 0;

  refuse(socket: Socket, answer: Buffer): void {
    socket.on("error", () => { /* the client's network */ });
    socket.end(answer);
    if (this.lingering >= MAX_LINGERING) {
      socket.destroy();
      return;
    }
    this.lingering++;
    const timer = setTimeout(() => socket.destroy(), REFUSAL_LINGER_MS);
    timer.unref();
    socket.once("data", () => setImmediate(() => socket.destroy()));
    socket.once("close", () => { this.lingering--; clearTimeout(timer); });
  }
}
