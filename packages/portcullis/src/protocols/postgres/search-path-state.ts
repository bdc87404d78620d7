/**
 * The session's search_path as the target has it, from the target's answers: a `SET search_path`
 * counts once its CommandComplete arrives, and a transaction that ends without committing takes its
 * changes with it (transaction.ts says how it ended). When only part of a transaction may have
 * been undone (a savepoint rolled back to), which changes survived is not worth guessing: the path
 * becomes "unknown", and rules fail closed on it (search-path.ts).
 */
import { type PathWalk, type SearchPath, type SearchPathChange, nextSearchPath, stepSearchPath } from "../../policy/sql/search-path.js";
import type { TransactionEvent } from "./transaction.js";

export class SearchPathState {
  private current: SearchPath;
  /** The path when the current transaction began (what a rollback returns to). */
  private atStart: SearchPath;
  /** The open transaction changed the path. */
  private touched = false;

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

  /**
   * Code the gateway cannot read ran (a DO block, a procedure, a fast-path call): it may have set the
   * path, and a procedure may even have committed that, so not even a rollback brings it back.
   */
  lost(): void {
    this.current = this.atStart = "unknown";
  }

  /** What the end (or partial undoing) of the transaction does to the path. */
  transaction(e: TransactionEvent): void {
    if (e === "partial") {
      if (this.touched) this.current = "unknown";
      return;
    }
    if (e === "undone" && this.touched) this.current = this.atStart;
    this.atStart = this.current;
    this.touched = false;
  }
}
