/**
 * The session's search_path as the target has it, from the target's answers: a `SET search_path`
 * counts once its CommandComplete arrives, and a transaction that ends without committing takes its
 * changes with it (an error in an implicit transaction, ROLLBACK, or COMMIT of a failed block, whose
 * tag is ROLLBACK). When a savepoint was rolled back to, which of the changes survived is not worth
 * guessing: the path becomes "unknown", and rules fail closed on it (search-path.ts).
 * session-objects.ts feeds this from the same answers that confirm statements and portals.
 */
import { type PathWalk, type SearchPath, type SearchPathChange, nextSearchPath, stepSearchPath } from "../../policy/sql/search-path.js";

const IDLE = 0x49;

export class SearchPathState {
  private current: SearchPath;
  /** The path when the current transaction began (what a rollback returns to). */
  private atStart: SearchPath;
  /** The open transaction changed the path; made a savepoint; failed. */
  private touched = false;
  private savepoint = false;
  private broken = false;

  /** @param initial the path at login (RESET returns to it). */
  constructor(private readonly initial: SearchPath) {
    this.current = initial;
    this.atStart = initial;
  }

  /** The path now, and whether the open transaction changed it (how it ends decides whether that stays). */
  get walk(): PathWalk {
    return { path: this.current, changed: this.touched };
  }

  /** The walk after a statement forwarded but not yet answered, assuming it succeeds. */
  step(w: PathWalk, change: SearchPathChange | undefined, transaction: boolean): PathWalk {
    return stepSearchPath(w, this.initial, change, transaction);
  }

  /** The target confirmed a statement that changes the path. */
  changed(change: SearchPathChange): void {
    this.current = nextSearchPath(this.current, this.initial, change);
    this.touched = true;
  }

  /** Any CommandComplete tag: commits, rollbacks and savepoints decide what a transaction keeps. */
  completed(tag: string): void {
    switch (tag) {
      case "COMMIT":
        this.end();
        return;
      case "SAVEPOINT":
        this.savepoint = true;
        return;
      // ROLLBACK, ROLLBACK TO SAVEPOINT and COMMIT of a failed block all answer ROLLBACK; with a
      // savepoint about, which one it was (and so what survived) is not known.
      case "ROLLBACK":
        if (!this.touched) return;
        if (this.savepoint) { this.current = "unknown"; return; }
        this.current = this.atStart;
        this.end();
        return;
      // The prepared transaction leaves the session; what its settings do to the session is not followed.
      case "PREPARE TRANSACTION":
        if (this.touched) this.current = "unknown";
        this.end();
        return;
    }
  }

  /** An error: the transaction (implicit or not) will not keep what it did, savepoints aside. */
  failed(): void {
    this.broken = true;
  }

  /** A change the gateway cannot see (a fast-path function call may run set_config). */
  lost(): void {
    this.current = this.atStart = "unknown";
  }

  /** ReadyForQuery: at idle the transaction is over; one that failed undid its changes. */
  ready(status: number): void {
    if (status !== IDLE) return;
    if (this.touched && this.broken) this.current = this.savepoint ? "unknown" : this.atStart;
    this.end();
  }

  private end(): void {
    this.atStart = this.current;
    this.touched = this.savepoint = this.broken = false;
  }
}
