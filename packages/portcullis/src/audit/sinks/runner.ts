/**
 * Feeds one sink from the store, in seq order, at least once. The store is the queue: the runner
 * reads after the sink's persisted cursor and moves the cursor only after a delivery succeeded,
 * so a crash or a failed delivery re-sends rather than skips. Nothing on the traffic path waits
 * for a sink: committers only call notify(), and a dead sink just falls behind (reported as lag).
 */
import type { Logger } from "../../core/logger.js";
import type { AuditRow, Store } from "../../store/store.js";
import { exportRecord, type ExportedRecord } from "../chain.js";
import { backoff } from "../webhook.js";
import type { AuditSink } from "./types.js";

export type SinkStore = Pick<Store, "readAudit" | "sinkCursor" | "setSinkCursor" | "lastAudit">;

export interface SinkRunnerOptions {
  /** Records per delivery; default 500. */
  batch?: number;
  /** How often to look for records when nobody calls notify(); default 1000 ms. */
  idleMs?: number;
  logger?: Logger;
  /** Records committed but not yet delivered, after every step (for a metrics gauge). */
  onLag?: (lag: number) => void;
  /** Retry backoff bounds; default 500 ms doubling up to 30 s. */
  retryBaseMs?: number;
  retryMaxMs?: number;
}

export class SinkRunner {
  private readonly batch: number;
  private readonly idleMs: number;
  private readonly retryBaseMs: number;
  private readonly retryMaxMs: number;
  private loop: Promise<void> | undefined;
  private stopping = false;
  private notified = false;
  /** Ends the current wait early; set while the loop waits. */
  private wake: ((byNotify: boolean) => void) | undefined;
  /** Ends the delivery in flight, for stop(): a hung sink must not hold the shutdown. */
  private abandon: (() => void) | undefined;

  constructor(private readonly store: SinkStore, private readonly sink: AuditSink, private readonly opts: SinkRunnerOptions = {}) {
    this.batch = Math.max(1, opts.batch ?? 500);
    this.idleMs = opts.idleMs ?? 1000;
    this.retryBaseMs = opts.retryBaseMs ?? 500;
    this.retryMaxMs = opts.retryMaxMs ?? 30_000;
  }

  get name(): string {
    return this.sink.name;
  }

  /** Starts the loop; a stopped runner stays stopped (make a new one). */
  start(): void {
    if (this.loop || this.stopping) return;
    this.loop = this.run();
  }

  /** New records were committed: look now instead of at the next idle tick. Never blocks. */
  notify(): void {
    this.notified = true;
    this.wake?.(true);
  }

  /** Ends the loop promptly (a delivery in flight is abandoned and re-sent next time) and closes the sink. */
  async stop(): Promise<void> {
    if (!this.stopping) {
      this.stopping = true;
      this.abandon?.();
      this.wake?.(false);
    }
    await this.loop;
    this.loop = undefined;
    await this.sink.close().catch((err: unknown) => this.opts.logger?.warn({ sink: this.sink.name, err: messageOf(err) }, "audit sink close failed"));
  }

  private async run(): Promise<void> {
    let cursor: number | undefined;
    let persisted: number | undefined;
    // Separate counts: each read succeeds before a delivery, which must not reset the delivery backoff.
    let readFailures = 0;
    let failures = 0;
    while (!this.stopping) {
      // 1. Where we are, and what comes next. Store errors (and a record that cannot be exported)
      //    are retried, never thrown: skipping would leave a silent gap in the export.
      let rows: AuditRow[];
      let records: ExportedRecord[];
      try {
        cursor ??= this.store.sinkCursor(this.sink.name);
        persisted ??= cursor;
        if (persisted < cursor) {
          this.store.setSinkCursor(this.sink.name, cursor);
          persisted = cursor;
        }
        this.notified = false;
        rows = this.store.readAudit(cursor, this.batch);
        records = rows.map(exportRecord);
      } catch (err) {
        this.opts.logger?.error({ sink: this.sink.name, err: messageOf(err) }, "audit sink cannot read the store");
        await this.wait(backoff(readFailures++, this.retryBaseMs, this.retryMaxMs), false);
        continue;
      }
      readFailures = 0;
      const last = rows.at(-1);
      if (!last) {
        this.reportLag(cursor);
        await this.wait(this.idleMs, true);
        continue;
      }

      // 2. Deliver; on failure the same records go again after a backoff.
      const outcome = await this.deliver(records);
      if (outcome === "stopped") break;
      if (outcome instanceof Error) {
        const level = failures === 0 ? "warn" : "debug";
        this.opts.logger?.[level]({ sink: this.sink.name, err: outcome.message, attempt: failures + 1, after: cursor }, "audit sink delivery failed");
        this.reportLag(cursor);
        await this.wait(backoff(failures++, this.retryBaseMs, this.retryMaxMs), false);
        continue;
      }
      if (failures > 0) this.opts.logger?.info({ sink: this.sink.name, attempts: failures + 1 }, "audit sink delivering again");
      failures = 0;

      // 3. Move past them. If saving fails, the next step saves it again; a restart re-sends.
      cursor = last.seq;
      try {
        this.store.setSinkCursor(this.sink.name, cursor);
        persisted = cursor;
      } catch (err) {
        this.opts.logger?.error({ sink: this.sink.name, err: messageOf(err) }, "audit sink cannot save its cursor");
      }
      this.reportLag(cursor);
    }
  }

  /** Not a Promise.race with a "stopped" promise: each race would leave a reaction on it until shutdown. */
  private deliver(records: ExportedRecord[]): Promise<"ok" | "stopped" | Error> {
    return new Promise<"ok" | "stopped" | Error>((resolve) => {
      if (this.stopping) {
        resolve("stopped");
        return;
      }
      this.abandon = () => resolve("stopped");
      // An abandoned delivery may still settle later; resolving again is a no-op.
      Promise.resolve()
        .then(() => this.sink.deliver(records))
        .then(() => resolve("ok"), (err: unknown) => resolve(err instanceof Error ? err : new Error(String(err))));
    }).finally(() => {
      this.abandon = undefined;
    });
  }

  private reportLag(cursor: number): void {
    if (!this.opts.onLag) return;
    try {
      const head = this.store.lastAudit()?.seq ?? 0;
      this.opts.onLag(Math.max(0, head - cursor));
    } catch (err) {
      this.opts.logger?.debug({ sink: this.sink.name, err: messageOf(err) }, "audit sink lag not reported");
    }
  }

  /** Sleeps `ms`; stop() always ends the sleep, notify() only when `byNotify` (not during backoff). */
  private wait(ms: number, byNotify: boolean): Promise<void> {
    if (this.stopping || (byNotify && this.notified)) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.wake = undefined;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.wake = (notified) => {
        if (!notified || byNotify) done();
      };
    });
  }
}

function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
