/**
 * Detections that are not policy: patterns worth an alert. `new_client_address`: an identity that
 * has connected before shows up from an address it has not used within the configured period
 * (a leaked token used from elsewhere looks exactly like this).
 */
import type { LoadedConfig } from "../config/load.js";
import type { Store } from "../store/store.js";
import type { AlertBus } from "./alerts.js";
import type { Logger } from "./logger.js";
import type { Session } from "./sessions.js";

/** An identity seen again from the same address within this long is not written again. */
const TOUCH_INTERVAL_MS = 60_000;

export class Detections {
  /** sub, iss and address → when they were last written: a busy HTTP agent is seen on every request. */
  private readonly recent = new Map<string, number>();

  constructor(private readonly store: Store, private readonly alerts: AlertBus, private readonly config: () => LoadedConfig, private readonly logger: Logger) {}

  /** `address`: the client's IP address (no port: ports change with every connection). */
  sessionOpened(session: Session, address: string): void {
    const p = session.principal;
    const now = Date.now();
    const key = `${p.iss}\u0000${p.sub}\u0000${address}`;
    const last = this.recent.get(key);
    if (last !== undefined && now - last < TOUCH_INTERVAL_MS) return;
    this.recent.set(key, now);
    if (this.recent.size > 50_000) this.recent.clear();
    let seen: { lastSeen?: number; known: boolean };
    try {
      seen = this.store.touchClientAddress(p.sub, p.iss, address, now);
    } catch (err) {
      this.logger.warn({ err: (err as Error).message }, "client address could not be recorded");
      return;
    }
    const stale = seen.lastSeen === undefined || now - seen.lastSeen > this.config().detections.new_client_address_after;
    if (seen.known && stale) {
      this.alerts.raise("new_client_address", {
        session: session.id, sub: p.sub, iss: p.iss, connection: session.record.connection, address,
        ...(seen.lastSeen !== undefined ? { last_seen: new Date(seen.lastSeen).toISOString() } : {}),
      }, `${p.iss} ${p.sub} ${address}`);
    }
  }
}
