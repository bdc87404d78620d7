/**
 * Budgets: how much an identity, a group or a connection may take within a sliding hour: rows,
 * bytes, statements, distinct tables read. Rows and bytes are charged as results stream, before
 * each row is forwarded, so a budget stops a result at the row that would cross it.
 *
 * Usage is kept per minute (a sliding window of 60 buckets) and written to the store every few
 * seconds and at shutdown, so a restart does not reset anyone's budget.
 */
import type { BudgetConfig } from "../config/schema.js";
import { type Principal, memberOf } from "../identity/principal.js";
import type { BudgetUsageRow, Store } from "../store/store.js";
import type { Logger } from "./logger.js";

const MINUTE = 60_000;
const WINDOW_MINUTES = 60;

export type BudgetMeasure = "rows" | "bytes" | "statements" | "tables";

export interface Exceeded {
  budget: string;
  scope: string;
  measure: BudgetMeasure;
  limit: number;
}

interface Bucket {
  rows: number;
  bytes: number;
  statements: number;
  tables: Set<string>;
}

/** One scope's sliding hour. */
class Window {
  private readonly buckets = new Map<number, Bucket>();
  rows = 0;
  bytes = 0;
  statements = 0;
  /** Table → the last minute it was read in. */
  private readonly tableSeen = new Map<string, number>();
  private oldest = Number.POSITIVE_INFINITY;

  /** Drops the minutes that have left the window (cheap when none has: one comparison). */
  refresh(minute: number): void {
    const horizon = minute - WINDOW_MINUTES + 1;
    if (this.oldest < horizon) {
      for (const [m, b] of this.buckets) {
        if (m >= horizon) continue;
        this.rows -= b.rows;
        this.bytes -= b.bytes;
        this.statements -= b.statements;
        this.buckets.delete(m);
      }
      for (const [t, m] of this.tableSeen) if (m < horizon) this.tableSeen.delete(t);
      this.oldest = Math.min(...this.buckets.keys(), minute);
    }
  }

  private roll(minute: number): Bucket {
    this.refresh(minute);
    let b = this.buckets.get(minute);
    if (!b) {
      b = { rows: 0, bytes: 0, statements: 0, tables: new Set() };
      this.buckets.set(minute, b);
      this.oldest = Math.min(this.oldest, minute);
    }
    return b;
  }

  tables(minute: number): number {
    this.roll(minute);
    return this.tableSeen.size;
  }

  wouldAddTables(minute: number, tables: readonly string[]): number {
    this.roll(minute);
    let n = this.tableSeen.size;
    for (const t of tables) if (!this.tableSeen.has(t)) n++;
    return n;
  }

  add(minute: number, d: { rows?: number; bytes?: number; statements?: number; tables?: readonly string[] }): void {
    const b = this.roll(minute);
    b.rows += d.rows ?? 0;
    b.bytes += d.bytes ?? 0;
    b.statements += d.statements ?? 0;
    this.rows += d.rows ?? 0;
    this.bytes += d.bytes ?? 0;
    this.statements += d.statements ?? 0;
    for (const t of d.tables ?? []) {
      b.tables.add(t);
      this.tableSeen.set(t, Math.max(this.tableSeen.get(t) ?? 0, minute));
    }
  }
}

interface Scope {
  budget: BudgetConfig & { name: string };
  key: string;
  window: Window;
}

/** The budgets that apply to one session, resolved once at its start. */
export class SessionMeter {
  constructor(private readonly book: BudgetBook, private readonly scopes: Scope[]) {}

  get empty(): boolean {
    return this.scopes.length === 0;
  }

  /** Before an operation runs: is any budget already spent, or would this statement or its tables cross one? */
  admit(tables: readonly string[]): Exceeded | undefined {
    const minute = Math.floor(Date.now() / MINUTE);
    for (const s of this.scopes) {
      const b = s.budget;
      const w = s.window;
      w.refresh(minute);
      if (b.rows_per_hour !== undefined && w.rows >= b.rows_per_hour) return exceeded(s, "rows", b.rows_per_hour);
      if (b.bytes_per_hour !== undefined && w.bytes >= b.bytes_per_hour) return exceeded(s, "bytes", b.bytes_per_hour);
      if (b.statements_per_hour !== undefined && w.statements + 1 > b.statements_per_hour) return exceeded(s, "statements", b.statements_per_hour);
      if (b.tables_per_hour !== undefined && w.wouldAddTables(minute, tables) > b.tables_per_hour) return exceeded(s, "tables", b.tables_per_hour);
    }
    for (const s of this.scopes) this.book.charge(s, minute, { statements: 1, tables });
    return undefined;
  }

  /** Charges bytes of a body (no rows); when they would cross a budget nothing is charged and they must not be sent. */
  bytes(n: number): Exceeded | undefined {
    return this.charge(0, n);
  }

  /** Charges one row of `bytes`; when it would cross a budget nothing is charged and the row must not be sent. */
  row(bytes: number): Exceeded | undefined {
    return this.charge(1, bytes);
  }

  private charge(rows: number, bytes: number): Exceeded | undefined {
    const minute = Math.floor(Date.now() / MINUTE);
    for (const s of this.scopes) {
      const b = s.budget;
      const w = s.window;
      w.refresh(minute);
      if (rows > 0 && b.rows_per_hour !== undefined && w.rows + rows > b.rows_per_hour) return exceeded(s, "rows", b.rows_per_hour);
      if (b.bytes_per_hour !== undefined && w.bytes + bytes > b.bytes_per_hour) return exceeded(s, "bytes", b.bytes_per_hour);
    }
    for (const s of this.scopes) this.book.charge(s, minute, { rows, bytes });
    return undefined;
  }
}

function exceeded(s: Scope, measure: BudgetMeasure, limit: number): Exceeded {
  return { budget: s.budget.name, scope: s.key, measure, limit };
}

export class BudgetBook {
  private readonly windows = new Map<string, Window>();
  /** Usage not yet written, by budget \0 key \0 minute. */
  private pending = new Map<string, BudgetUsageRow>();
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly store: Store, private readonly budgets: () => readonly BudgetConfig[], private readonly logger: Logger, flushMs = 2000) {
    const since = Math.floor(Date.now() / MINUTE) - WINDOW_MINUTES + 1;
    for (const u of store.loadBudgetUsage(since)) {
      this.window(u.budget, u.key).add(u.minute, { rows: u.rows, bytes: u.bytes, statements: u.statements, tables: u.tables });
    }
    this.timer = setInterval(() => this.flush(), flushMs);
    this.timer.unref();
  }

  /** The budgets that apply to this principal on this connection, each with the scope it is counted under. */
  meterFor(p: Principal, connection: string): SessionMeter {
    const scopes: Scope[] = [];
    this.budgets().forEach((cfg, i) => {
      const budget = { ...cfg, name: cfg.name ?? `budget-${i}` };
      if (cfg.groups && !memberOf(p, cfg.groups)) return;
      if (cfg.subjects && !cfg.subjects.includes(p.sub)) return;
      if (cfg.connections && !cfg.connections.includes(connection)) return;
      const keys = cfg.per === "connection" ? [`connection:${connection}`]
        : cfg.per === "group" ? cfg.groups!.filter((g) => p.groups.includes(g)).map((g) => `group:${g}`)
        : [`identity:${p.iss} ${p.sub}`];
      for (const key of keys) scopes.push({ budget, key, window: this.window(budget.name, key) });
    });
    return new SessionMeter(this, scopes);
  }

  /** @internal */
  charge(s: Scope, minute: number, d: { rows?: number; bytes?: number; statements?: number; tables?: readonly string[] }): void {
    s.window.add(minute, d);
    const id = `${s.budget.name}\0${s.key}\0${minute}`;
    let row = this.pending.get(id);
    if (!row) this.pending.set(id, (row = { budget: s.budget.name, key: s.key, minute, rows: 0, bytes: 0, statements: 0, tables: [] }));
    row.rows += d.rows ?? 0;
    row.bytes += d.bytes ?? 0;
    row.statements += d.statements ?? 0;
    if (d.tables?.length) row.tables = [...new Set([...row.tables, ...d.tables])];
  }

  flush(): void {
    if (this.pending.size === 0) return;
    const rows = [...this.pending.values()];
    this.pending = new Map();
    try {
      this.store.addBudgetUsage(rows);
    } catch (err) {
      // Keep the usage for the next try: a budget must not reset because a write failed.
      for (const r of rows) this.pending.set(`${r.budget}\0${r.key}\0${r.minute}`, r);
      this.logger.warn({ err: (err as Error).message }, "budget usage could not be saved; retrying");
    }
  }

  close(): void {
    clearInterval(this.timer);
    this.flush();
  }

  private window(budget: string, key: string): Window {
    const id = `${budget}\0${key}`;
    let w = this.windows.get(id);
    if (!w) this.windows.set(id, (w = new Window()));
    return w;
  }
}
