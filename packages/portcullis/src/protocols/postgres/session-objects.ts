/**
 * The session's named objects as the *target* has them: prepared statements (protocol Parse and SQL
 * PREPARE share one namespace) and portals (protocol Bind and SQL cursors share another). Every stage
 * that needs to know what a name stands for asks this one tracker, so policy and masking can never
 * disagree, and neither can be told a story the target did not confirm.
 *
 * How a name is known. Each message forwarded to the target queues its effect; the effect becomes
 * the session's state only when the target confirms it (ParseComplete, BindComplete, CloseComplete,
 * CommandComplete of PREPARE, DECLARE, DEALLOCATE, CLOSE, DISCARD ALL), and is dropped when the
 * target skips it (an error discards everything up to Sync; the rest of a multi-statement Query does
 * not run). Within one segment (what one ReadyForQuery answers) a message only runs if every earlier
 * one succeeded, so a name used in the segment that defined it resolves to that definition. A name
 * whose definition is still unanswered from an *earlier* segment is not guessed at: the caller waits
 * for the target's answer (the Sync was already sent, so the answer comes without the agent).
 *
 * What the target forgets: portals when their transaction ends (ReadyForQuery 'I'), except WITH HOLD
 * cursors; cursors and statements on CLOSE/DEALLOCATE/DISCARD ALL; the unnamed statement whenever a
 * new unnamed Parse is attempted. Forgetting more than the target is safe (the name is refused as
 * unknown); remembering a definition the target never confirmed is what this module exists to stop.
 * Objects made inside the database by functions (a PL/pgSQL OPEN of a refcursor) are invisible here
 * and resolve as unknown.
 *
 * The search_path is followed the same way (search-path-state.ts): a change counts once the target
 * confirms it and is undone with the transaction that made it, and a message whose path an earlier
 * segment's answer could still change waits for that answer. A WITH HOLD cursor outlives only a
 * transaction that commits (transaction.ts).
 *
 * Code the gateway cannot read (a DO block, dynamic SQL, a fast-path call) may PREPARE, DEALLOCATE,
 * CLOSE and OPEN under any name and set the search_path: once such a statement has run, or failed
 * (PREPARE is not undone by an error), every name is forgotten and the path is unknown.
 */
import type { Frame } from "./framer.js";
import type { MessageStage } from "./relay.js";
import { MSG, decodeBind, decodeExecute, decodeParse, decodeQuery, decodeTarget } from "./messages.js";
import { bindResultFormats } from "./rows.js";
import { PortcullisError } from "../../errors.js";
import type { StatementInfo } from "../../policy/sql/classify.js";
import { splitStatements } from "../../policy/sql/classify.js";
import { type PathWalk, type SearchPath, type SearchPathChange, pathChangeOf } from "../../policy/sql/search-path.js";
import { SearchPathState } from "./search-path-state.js";
import { type TransactionEvent, TransactionWatch } from "./transaction.js";

/** A prepared statement: its text as the target parsed it; `memo` is the masking stage's plan. */
export interface PreparedStatement<M = unknown> {
  /** Protocol Parse: the statement. SQL PREPARE: the PREPARE statement (what EXECUTE runs is inside it). */
  text: string;
  sql: boolean;
  memo?: M;
}

/** A portal (Bind) or cursor (DECLARE). */
export interface Portal<M = unknown> {
  /** What it runs: the statement's text (Bind) or the DECLARE statement (cursor). */
  text: string;
  statement?: PreparedStatement<M>;
  /** Bind: everything after the two names (parameter formats, values, result formats). */
  params?: Buffer;
  /** Result column formats asked for at Bind. */
  formats: number[];
  cursor: boolean;
  /** WITH HOLD: outlives the transaction that made it. */
  holdable: boolean;
  memo?: M;
}

/** What a name stands for when a message that uses it runs: an object, nothing, or not yet known. */
export type Resolution<T> = { known: T } | { unknown: true } | { wait: Promise<void> };

type Change<M> =
  | { kind: "prepare"; name: string; entry: PreparedStatement<M> }
  | { kind: "deallocate"; name: string }
  | { kind: "declare"; name: string; entry: Portal<M> }
  | { kind: "close"; name: string }
  | { kind: "discard" };

type Effect<M> =
  | { on: "parse"; segment: number; name: string; entry: PreparedStatement<M> }
  | { on: "bind"; segment: number; name: string; entry: Portal<M> }
  | { on: "close"; segment: number; target: "S" | "P"; name: string }
  /**
   * One statement run (a Query statement or an Execute): answered by CommandComplete, EmptyQuery or
   * PortalSuspended. `path`: how it changes the search_path; `transaction`: it is COMMIT, ROLLBACK, ...;
   * `code`: it runs code the gateway cannot read, which may change every name ("names": the agent's
   * DO block or dynamic SQL) or at least the path ("path": a procedure, which may even COMMIT it).
   */
  | { on: "run"; segment: number; changes: Change<M>[]; path?: SearchPathChange; transaction?: boolean; code?: "names" | "path" }
  /** Query text the gateway could not split: if the target runs anything of it, the gateway has lost track. */
  | { on: "opaque"; segment: number };

const T = { ParseComplete: 0x31, BindComplete: 0x32, CloseComplete: 0x33, CommandComplete: 0x43, EmptyQuery: 0x49, PortalSuspended: 0x73, CopyInResponse: 0x47 } as const;

/** The client message types `forwarded` must see. */
export const TRACKED_CLIENT_TYPES: readonly number[] = [MSG.Parse, MSG.Bind, MSG.Close, MSG.Execute, MSG.Query, MSG.Sync, MSG.FunctionCall, MSG.CopyDone, MSG.CopyFail];
/** The target message types `received` must see. */
export const TRACKED_SERVER_TYPES: readonly number[] = [0x31, 0x32, 0x33, 0x43, 0x49, 0x73, 0x47, MSG.ErrorResponse, MSG.ReadyForQuery];

/** Client messages each answered by exactly one ReadyForQuery. */
const ENDS_SEGMENT = new Set<number>([MSG.Query, MSG.Sync, MSG.FunctionCall]);

/** The CommandComplete tag a statement with a change must be answered with. */
const TAG: Record<Change<unknown>["kind"], RegExp> = {
  prepare: /^PREPARE$/, deallocate: /^DEALLOCATE( ALL)?$/, declare: /^DECLARE CURSOR$/, close: /^CLOSE CURSOR( ALL)?$/, discard: /^DISCARD ALL$/,
};

/** Session state changes of a statement, as the classifier read it (entry texts filled in by the caller). */
function changesOf<M>(info: StatementInfo, text: () => string): Change<M>[] {
  const out: Change<M>[] = [];
  if (info.prepares) out.push({ kind: "prepare", name: info.prepares.name, entry: { text: text(), sql: true } });
  if (info.declares) out.push({ kind: "declare", name: info.declares.name, entry: { text: text(), formats: [], cursor: true, holdable: info.declares.holdable } });
  if (info.deallocates !== undefined) out.push({ kind: "deallocate", name: info.deallocates });
  if (info.closes !== undefined) out.push({ kind: "close", name: info.closes });
  if (info.discardsAll) out.push({ kind: "discard" });
  return out;
}

const hasChanges = (i: StatementInfo): boolean =>
  i.prepares !== undefined || i.declares !== undefined || i.deallocates !== undefined || i.closes !== undefined || i.discardsAll === true;

/**
 * What code the gateway cannot read may change: every name, for code the agent wrote (a DO block,
 * dynamic SQL); the path, for a procedure (the database's own code: forgetting a driver's named
 * statements after each CALL would break it; see docs/threat-model.md).
 */
const codeOf = (i: StatementInfo | undefined): "names" | "path" | undefined =>
  i === undefined ? undefined : i.kinds.includes("dynamic") ? "names" : i.kinds.includes("call") ? "path" : undefined;

/**
 * The run effect of one statement; `executed` is what a SQL EXECUTE in it runs (undefined: none, or
 * a name the target does not have, which it refuses).
 */
function runOf<M>(segment: number, info: StatementInfo | undefined, changes: Change<M>[] = [], executed?: StatementInfo): Effect<M> {
  const codes = [codeOf(info), codeOf(executed)];
  const code = codes.includes("names") ? "names" : codes.includes("path") ? "path" : undefined;
  // What the body of agent code was read to do is not answered by the statement's own tag, and it
  // may do more: everything is forgotten once it has run instead.
  const e: Effect<M> = { on: "run", segment, changes: code === "names" ? [] : changes };
  if (code) e.code = code;
  const path = (info && pathChangeOf(info)) ?? (executed && pathChangeOf(executed));
  if (path !== undefined) e.path = path;
  if (info?.kinds.includes("transaction")) e.transaction = true;
  return e;
}

export class SessionState<M = unknown> {
  private readonly statements = new Map<string, PreparedStatement<M>>();
  private readonly portals = new Map<string, Portal<M>>();
  /** Effects forwarded and not yet answered, in forwarding order (the target answers in this order). */
  private pending: Effect<M>[] = [];
  private waiters: { segment: number; resolve: () => void }[] = [];
  /** Segments forwarded so far (the segment of the message being handled now). */
  sent = 0;
  /** Segments the target has answered (ReadyForQuery seen). */
  done = 0;
  /** Whether code may have run in the current segment: a Bind (planning folds IMMUTABLE calls) or an Execute before the Sync. */
  ranInSegment = false;

  private readonly path: SearchPathState;
  private readonly transaction = new TransactionWatch();
  /** WITH HOLD cursors declared in the open transaction: they survive only its commit. */
  private heldInTransaction = new Set<string>();
  /** Segments of fast-path function calls, which may run any code. */
  private readonly codeSegments = new Set<number>();
  /**
   * An extended-protocol Execute that may start COPY FROM STDIN, and the Syncs sent after it before
   * the client's CopyDone or CopyFail. If the target enters copy-in mode it ignores those Syncs, so
   * the ReadyForQuery that ends the COPY's segment answers theirs too.
   */
  private copyIn?: { segment: number; syncs: number; ended: boolean; started: boolean };

  /**
   * @param classify the statements of a Query or Parse text (the policy's classification cache).
   * @param initialSearchPath the session's search_path at login ("unknown" when not asked for).
   */
  constructor(private readonly classify: (sql: string) => StatementInfo[], initialSearchPath: SearchPath = "unknown") {
    this.path = new SearchPathState(initialSearchPath);
  }

  /**
   * The search_path a message of the current segment runs under, assuming the segment's earlier
   * messages succeed (if one fails, this one does not run). An earlier segment's unanswered change,
   * or its unanswered transaction end after a change, is waited for.
   */
  searchPath(): Resolution<PathWalk> {
    let w = this.path.walk;
    for (const e of this.pending) {
      if (e.on !== "run" || (e.path === undefined && !e.transaction)) continue;
      if (e.segment !== this.sent) {
        if (e.path !== undefined || w.changed) return { wait: this.settled(this.sent) };
        continue;
      }
      w = this.path.step(w, e.path, e.transaction === true);
    }
    return { known: w };
  }

  /** What statement `name` is for a message of the current segment. */
  statement(name: string): Resolution<PreparedStatement<M>> {
    return this.resolve(name, "S", () => this.statements.get(name));
  }

  /** What portal or cursor `name` is for a message of the current segment. */
  portal(name: string): Resolution<Portal<M>> {
    return this.resolve(name, "P", () => this.portals.get(name));
  }

  /**
   * What the target has under a name right now, by its confirmations alone. A stage reading an
   * answer asks this: every answer before it has been seen, none after, so this is the state the
   * target had when it ran the message being answered.
   */
  confirmedStatement(name: string): PreparedStatement<M> | undefined {
    return this.statements.get(name);
  }

  confirmedPortal(name: string): Portal<M> | undefined {
    return this.portals.get(name);
  }

  private resolve<T>(name: string, ns: "S" | "P", confirmed: () => T | undefined): Resolution<T> {
    for (let i = this.pending.length - 1; i >= 0; i--) {
      const e = this.pending[i]!;
      const hit = effectOn(e, name, ns);
      if (hit === undefined) continue;
      if (e.segment !== this.sent) return { wait: this.settled(this.sent) };
      return hit === null ? { unknown: true } : { known: hit as T };
    }
    const c = confirmed();
    return c ? { known: c } : { unknown: true };
  }

  /** undefined when every earlier segment has been answered (with any ParameterStatus it brought); else when it will be. */
  answered(): Promise<void> | undefined {
    return this.done >= this.sent ? undefined : this.settled(this.sent);
  }

  /** Resolves when every segment before `segment` has been answered by the target. */
  private settled(segment: number): Promise<void> {
    if (this.done >= segment) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ segment, resolve }));
  }

  /** Call for every client frame as it is forwarded to the target (after every stage has had its say). */
  forwarded(frame: Frame): void {
    const segment = this.sent;
    switch (frame.type) {
      case MSG.Parse: {
        const { name, query } = decodeParse(frame);
        this.pending.push({ on: "parse", segment, name, entry: { text: query, sql: false } });
        break;
      }
      case MSG.Bind: {
        const { portal, statement } = decodeBind(frame);
        const s = this.statement(statement);
        const stmt = "known" in s ? s.known : undefined;
        const params = Buffer.from(frame.raw.subarray(5 + Buffer.byteLength(portal) + 1 + Buffer.byteLength(statement) + 1));
        this.pending.push({ on: "bind", segment, name: portal, entry: { text: stmt?.text ?? "", ...(stmt ? { statement: stmt } : {}), params, formats: bindResultFormats(frame), cursor: false, holdable: false } });
        // Planning at Bind runs code too: an IMMUTABLE function with constant arguments is folded then.
        this.ranInSegment = true;
        break;
      }
      case MSG.Close: {
        const { kind, name } = decodeTarget(frame);
        this.pending.push({ on: "close", segment, target: kind === "S" ? "S" : "P", name });
        break;
      }
      case MSG.Execute: {
        const p = this.portal(decodeExecute(frame).portal);
        // A cursor's text is its DECLARE, which Execute does not run again.
        const text = "known" in p && !p.known.cursor ? p.known.text : "";
        const infos = this.classify(text);
        // A cursor's query runs as it is fetched from: what it does to the path happens now.
        const cursor = "known" in p && p.known.cursor ? this.declaredBy(p.known) : undefined;
        this.pending.push(cursor ? runOf(segment, undefined, [], cursor) : this.runEffects(segment, text, infos)[0] ?? runOf(segment, undefined));
        if (infos[0]?.kinds.includes("copy_in")) this.copyIn = { segment, syncs: 0, ended: false, started: false };
        this.ranInSegment = true;
        break;
      }
      case MSG.Query: {
        const sql = decodeQuery(frame);
        this.pending.push(...this.runEffects(segment, sql, this.classify(sql), true));
        break;
      }
      case MSG.FunctionCall:
        // Called by OID: it may be anything, set_config included; its names are forgotten once it is answered.
        this.path.lost();
        this.codeSegments.add(segment);
        break;
    }
    if (frame.type === MSG.Sync && this.copyIn && !this.copyIn.ended) this.copyIn.syncs++;
    if ((frame.type === MSG.CopyDone || frame.type === MSG.CopyFail) && this.copyIn) this.copyIn.ended = true;
    if (ENDS_SEGMENT.has(frame.type)) {
      this.sent++;
      this.ranInSegment = false;
    }
  }

  /** The run effects of a text (classified as `infos`): one per statement; a Query's text that does not split is opaque. */
  private runEffects(segment: number, sql: string, infos: StatementInfo[], query = false): Effect<M>[] {
    // Empty text is answered by one EmptyQueryResponse.
    if (infos.length === 0) return [runOf(segment, undefined)];
    if (infos.length === 1 && infos[0]!.kinds.includes("unknown") && infos[0]!.error !== undefined && !hasChanges(infos[0]!)) {
      // Text the gateway cannot read may do anything the target can, to the search_path too.
      return query ? [{ on: "opaque", segment }] : [{ on: "run", segment, changes: [], path: "unknown" }];
    }
    if (!infos.some(hasChanges)) return infos.map((info) => runOf(segment, info, [], this.executedBy(info)));
    const texts = infos.length === 1 ? [sql] : splitStatements(sql) ?? [];
    return infos.map((info, i) => runOf(segment, info, changesOf<M>(info, () => texts[i] ?? sql), this.executedBy(info)));
  }

  /**
   * What a statement runs besides itself, by what the target holds under a name: the prepared
   * statement of a SQL EXECUTE (or EXPLAIN ANALYZE EXECUTE), the query of a cursor FETCH or MOVE.
   */
  private executedBy(info: StatementInfo): StatementInfo | undefined {
    if (info.fetches !== undefined) {
      const c = this.portal(info.fetches);
      return "known" in c && c.known.cursor ? this.declaredBy(c.known) : undefined;
    }
    const name = info.executes ?? info.explainsExecute;
    if (name === undefined) return undefined;
    const r = this.statement(name);
    if (!("known" in r)) return undefined;
    const first = this.classify(r.known.text)[0];
    return r.known.sql ? first?.prepares?.info : first;
  }

  /** The query a cursor runs, from its DECLARE. */
  private declaredBy(cursor: Portal<M>): StatementInfo | undefined {
    return this.classify(cursor.text)[0]?.declares?.info;
  }

  /** Call for every frame from the target, before any stage rewrites it. Throws when the target's answers stop making sense. */
  received(frame: Frame): void {
    switch (frame.type) {
      case T.ParseComplete: {
        const e = this.next("parse");
        this.statements.set(e.name, e.entry);
        return;
      }
      case T.BindComplete: {
        const e = this.next("bind");
        this.portals.set(e.name, e.entry);
        return;
      }
      case T.CloseComplete: {
        const e = this.next("close");
        (e.target === "S" ? this.statements : this.portals).delete(e.name);
        return;
      }
      case T.CommandComplete: {
        const head = this.pending[0];
        if (head?.on === "opaque") lost("the target ran a statement the gateway could not read");
        const e = this.next("run");
        const tag = frame.raw.toString("utf8", 5, frame.raw.length - 1);
        for (const c of e.changes) {
          if (!TAG[c.kind].test(tag)) lost(`the target answered "${tag.slice(0, 40)}" where the gateway expected ${c.kind}`);
          this.apply(c);
        }
        this.ran(e);
        const t = this.transaction.completed(tag);
        if (t) this.transactionEvent(t);
        return;
      }
      case T.CopyInResponse:
        if (this.copyIn?.segment === this.done) this.copyIn.started = true;
        return;
      case T.EmptyQuery:
        this.next("run");
        return;
      // The rows sent so far have been computed: whatever the statement does to the path, it has done.
      case T.PortalSuspended:
        this.ran(this.next("run"));
        return;
      case MSG.ErrorResponse:
        // Code that failed may still have prepared statements (PREPARE is not undone), or committed a SET.
        if (this.pending[0]?.on === "run" && this.pending[0].code && this.pending[0].segment === this.done) this.codeRan(this.pending[0].code);
        // The target skips the rest of the segment; a failed unnamed Parse has dropped the old unnamed statement too.
        this.dropSegment(this.done);
        this.transaction.failed();
        return;
      case MSG.ReadyForQuery: {
        this.dropSegment(this.done);
        if (this.codeSegments.delete(this.done)) this.codeRan("names");
        this.done++;
        if (this.copyIn?.segment === this.done - 1) {
          // The Syncs the target ignored in copy-in mode are answered by this ReadyForQuery too.
          if (this.copyIn.started) for (let i = 0; i < this.copyIn.syncs; i++) this.dropSegment(this.done++);
          this.copyIn = undefined;
        }
        const t = this.transaction.ready(frame.raw[5] ?? 0);
        if (t) this.transactionEvent(t);
        // Idle: the transaction is over, and with it every portal but WITH HOLD cursors.
        if (frame.raw[5] === 0x49) for (const [name, p] of this.portals) if (!p.holdable) this.portals.delete(name);
        const ready = this.waiters.filter((w) => w.segment <= this.done);
        if (ready.length > 0) {
          this.waiters = this.waiters.filter((w) => w.segment > this.done);
          for (const w of ready) w.resolve();
        }
        return;
      }
    }
  }

  /** A statement ran (in whole, or up to a suspended portal): its effect on the path and names. */
  private ran(e: Extract<Effect<M>, { on: "run" }>): void {
    if (e.code) this.codeRan(e.code);
    else if (e.path !== undefined) this.path.changed(e.path);
  }

  /** A transaction ended (or was partly undone): WITH HOLD cursors made in it stay only if it committed. */
  private transactionEvent(t: TransactionEvent): void {
    this.path.transaction(t);
    if (t !== "kept") for (const name of this.heldInTransaction) this.portals.delete(name);
    this.heldInTransaction.clear();
  }

  /** Code the gateway cannot read ran (or failed part-way): what it knew about the path, and perhaps every name, cannot be trusted. */
  private codeRan(what: "names" | "path"): void {
    this.path.lost();
    if (what === "path") return;
    this.statements.clear();
    this.portals.clear();
    this.heldInTransaction.clear();
  }

  private apply(c: Change<M>): void {
    switch (c.kind) {
      case "prepare": this.statements.set(c.name, c.entry); return;
      // DEALLOCATE ALL keeps the unnamed statement at the target; forgetting it too is safe.
      case "deallocate": if (c.name === "*") this.statements.clear(); else this.statements.delete(c.name); return;
      case "declare":
        this.portals.set(c.name, c.entry);
        if (c.entry.holdable) this.heldInTransaction.add(c.name);
        return;
      case "close": if (c.name === "*") this.portals.clear(); else this.portals.delete(c.name); return;
      case "discard": this.statements.clear(); this.portals.clear(); return;
    }
  }

  private dropSegment(segment: number): void {
    let i = 0;
    while (i < this.pending.length && this.pending[i]!.segment === segment) {
      const e = this.pending[i]!;
      if (e.on === "parse" && e.name === "") this.statements.delete("");
      i++;
    }
    if (i > 0) this.pending = this.pending.slice(i);
  }

  private next<K extends Effect<M>["on"]>(on: K): Extract<Effect<M>, { on: K }> {
    const e = this.pending.shift();
    if (!e || e.on !== on || e.segment !== this.done) lost(`the target confirmed a ${on} the gateway did not send`);
    return e as Extract<Effect<M>, { on: K }>;
  }
}

/** The object an effect leaves under `name` (null: none), or undefined when it does not touch that name. */
function effectOn<M>(e: Effect<M>, name: string, ns: "S" | "P"): PreparedStatement<M> | Portal<M> | null | undefined {
  switch (e.on) {
    case "parse": return ns === "S" && e.name === name ? e.entry : undefined;
    case "bind": return ns === "P" && e.name === name ? e.entry : undefined;
    case "close": return e.target === ns && e.name === name ? null : undefined;
    case "opaque": return null;
    case "run": {
      // Code the agent wrote may leave anything under any name.
      if (e.code === "names") return null;
      let out: PreparedStatement<M> | Portal<M> | null | undefined;
      for (const c of e.changes) {
        if (ns === "S" && c.kind === "prepare" && c.name === name) out = c.entry;
        else if (ns === "S" && c.kind === "deallocate" && (c.name === name || c.name === "*")) out = null;
        else if (ns === "P" && c.kind === "declare" && c.name === name) out = c.entry;
        else if (ns === "P" && c.kind === "close" && (c.name === name || c.name === "*")) out = null;
        else if (c.kind === "discard") out = null;
      }
      return out;
    }
  }
}

/** The stage that keeps a SessionState: placed nearest the target, so it sees exactly what the target sees. */
export function stateTracker<M>(state: SessionState<M>): MessageStage {
  return {
    fromClient: (frame) => { state.forwarded(frame); return undefined; },
    clientTypes: TRACKED_CLIENT_TYPES,
    fromServer: (frame) => { state.received(frame); return undefined; },
    serverTypes: TRACKED_SERVER_TYPES,
  };
}

function lost(why: string): never {
  throw new PortcullisError("E_PROTOCOL", `portcullis: session state lost: ${why}`);
}
