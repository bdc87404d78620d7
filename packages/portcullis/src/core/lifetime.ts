/**
 * How long a session may live: no longer than its token, nor its issuer's max_token_age (SPEC §3),
 * whatever the protocol. At the deadline the session is killed (E_TOKEN_EXPIRED), unless an
 * operation is still running and `identity.expiry_grace` allows it to finish: then nothing new
 * starts, and the session ends when the last running operation does, or the grace runs out.
 * Protocols say when an operation starts and ends; the core decides when the session must end.
 */
import type { Principal } from "../identity/principal.js";
import { sessionDeadline } from "../identity/principal.js";

/** setTimeout cannot wait longer than this. */
const MAX_TIMER_MS = 2 ** 31 - 1;

export class SessionLifetime {
  private running = 0;
  private expired = false;
  private timer?: NodeJS.Timeout;

  constructor(
    principal: Principal,
    private readonly grace: () => number,
    private readonly end: () => void,
  ) {
    const ms = sessionDeadline(principal) - Date.now();
    if (ms > MAX_TIMER_MS) return;
    this.timer = setTimeout(() => this.deadline(), Math.max(0, ms));
    this.timer.unref();
  }

  /** An operation starts; false once the token has expired (the session is being ended: start nothing). */
  begin(): boolean {
    if (this.expired) {
      queueMicrotask(this.end);
      return false;
    }
    this.running++;
    return true;
  }

  /** An operation ended (answered, refused or cut short). */
  finish(): void {
    this.running = Math.max(0, this.running - 1);
    if (this.expired && this.running === 0) queueMicrotask(this.end);
  }

  /** The session ended: no deadline any more. */
  stop(): void {
    clearTimeout(this.timer);
  }

  private deadline(): void {
    const grace = this.grace();
    if (grace > 0 && this.running > 0) {
      this.expired = true;
      this.timer = setTimeout(this.end, grace);
      this.timer.unref();
      return;
    }
    this.end();
  }
}
