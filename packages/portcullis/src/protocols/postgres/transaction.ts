/**
 * How the session's transaction ends, read from the target's answers: what a COMMIT, ROLLBACK or
 * error does to state made inside it (search_path changes, WITH HOLD cursors). PostgreSQL answers
 * ROLLBACK, ROLLBACK TO SAVEPOINT and COMMIT of a failed block alike (tag ROLLBACK), so once a
 * savepoint has been made a ROLLBACK may have undone only part of the transaction: "partial".
 * Statements of one multi-statement Query form one implicit transaction, which COMMIT and ROLLBACK
 * inside it end; an error in it undoes the whole of it.
 */
export type TransactionEvent = "kept" | "undone" | "partial";

const IDLE = 0x49;

export class TransactionWatch {
  private savepoint = false;
  private broken = false;

  /** A CommandComplete tag; the event it is, if any. */
  completed(tag: string): TransactionEvent | undefined {
    switch (tag) {
      case "COMMIT": return this.end("kept");
      case "SAVEPOINT": this.savepoint = true; return undefined;
      case "ROLLBACK":
        this.broken = false;
        return this.savepoint ? "partial" : this.end("undone");
      // Whether the session keeps the settings of a prepared transaction is not followed.
      case "PREPARE TRANSACTION": return "partial";
      default: return undefined;
    }
  }

  /** An ErrorResponse: the transaction will not keep what it did. */
  failed(): void {
    this.broken = true;
  }

  /** ReadyForQuery: at idle, the transaction that was open (if any) has ended. */
  ready(status: number): TransactionEvent | undefined {
    if (status !== IDLE) return undefined;
    return this.end(this.broken ? "undone" : "kept");
  }

  private end(e: "kept" | "undone"): TransactionEvent {
    this.savepoint = this.broken = false;
    return e;
  }
}
