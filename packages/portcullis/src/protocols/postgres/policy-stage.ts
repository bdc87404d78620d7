/**
 * SQL policy on the PostgreSQL wire. Every Query, Parse, Bind, Execute and FunctionCall is judged
 * before it reaches the target; a refused message is replaced by a harmless statement that fails
 * to parse at the target (`portcullis_denied_<nonce>`), and the target's error for it is rewritten
 * into the gateway's own. So the refusal arrives exactly where PostgreSQL would have put an error
 * of its own: in order within a pipeline, followed by "discard until Sync", and aborting an open
 * transaction block, which keeps every client's state machine in step. The refused text itself
 * never reaches the target.
 */
import { randomBytes } from "node:crypto";
import type { ApprovalGate, ApprovalMode } from "../../core/approval-gate.js";
import type { OperationTicket, Refusal as ContainmentRefusal, Session } from "../../core/sessions.js";
import { sqlstateFor } from "./errors.js";
import { sqlOperationKeys } from "../../approvals/keys.js";
import type { Decision } from "../../policy/decision.js";
import type { PolicyEngine } from "../../policy/engine.js";
import type { ClassificationCache } from "../../policy/sql/cache.js";
import { type StatementInfo, resolveExecute } from "../../policy/sql/classify.js";
import { type PathWalk, type SearchPath, pathChangeOf } from "../../policy/sql/search-path.js";
import type { Frame } from "./framer.js";
import { maskSqlValues } from "../../policy/sql/values.js";
import { MSG, type PgErrorSpec, decodeBind, decodeExecute, decodeParse, decodeQuery, encode, pgError } from "./messages.js";
import type { MessageStage, Verdict } from "./relay.js";
import type { PreparedStatement, Portal, Resolution, SessionState } from "./session-objects.js";
import { MASKED_STORE_MESSAGE, MASKED_STORE_RULE } from "./masked-stores.js";

export interface PolicyStageDeps {
  session: Session;
  /** The session's statements and portals as the target confirmed them (shared with masking). */
  state: SessionState;
  connection: string;
  /** The policy in force now (it changes on reload). */
  policy: () => PolicyEngine;
  cache: ClassificationCache;
  /** The session's search_path at login, or "unknown" when it was not asked for (RESET returns to it). */
  initialSearchPath: SearchPath;
  /** The target user (`$user` in search_path); undefined when no schema of that name exists. */
  targetUser: string | undefined;
  /**
   * Told, in forwarding order, the operation number of each message the target will answer with a
   * result or an error (Query, Execute, FunctionCall, and refused Parse or Bind): the recording
   * stage pairs results with operations this way.
   */
  onOperation?: (op: number, extended: boolean) => void;
  /** Operations a rule sends for approval go here; absent: they are refused like a denial. */
  approvals?: ApprovalGate;
  /** hold (default) or defer, from `-c portcullis.approval=defer` in the startup options. */
  approvalMode?: ApprovalMode;
  /**
   * On connections with column rules: whether statements (their texts, and what they run) would store
   * masked data (masked-stores.ts). undefined: they cannot store anything; a promise: the verdict.
   */
  maskedStores?: (sql: string, infos: readonly StatementInfo[]) => Promise<boolean> | undefined;
}

interface Refusal {
  nonce: Buffer;
  error: Buffer;
  /** RFQ-producing messages forwarded before this refusal's segment ends. */
  segment: number;
}

/** What a prepared statement or portal would run, its literal-free text for the audit, and what binds an approval to it. */
interface Prepared {
  infos: StatementInfo[];
  summary?: string;
  /** The exact text (an approval is bound to it). */
  text?: string;
  /** A portal's parameter values and formats, as bound (an approval is bound to them too). */
  params?: Buffer;
}

const unknownName = (what: "statement" | "portal", name: string): Decision => ({
  action: "deny",
  rule: what === "statement" ? "unknown-prepared-statement" : "unknown-portal",
  // PostgreSQL's own words (clients match on them); the gateway knows no such name, whatever the target holds.
  message: what === "statement" ? (name === "" ? "unnamed prepared statement does not exist" : `prepared statement "${name}" does not exist`) : `portal "${name}" does not exist`,
});

/** Text the parser rejects: never forwarded, answered as PostgreSQL would (and audited as refused). */
const SYNTAX_ERROR_RULE = "syntax-error";

const UNKNOWN_CALL: StatementInfo[] = [{ kinds: ["unknown"], actions: [{ kind: "unknown" }], tables: [], functions: [], error: "fast-path function call" }];

/**
 * Text that standard_conforming_strings, backslash_quote or client_encoding decide how the target
 * reads: a backslash, or anything beyond ASCII. Code may change those settings where the gateway
 * cannot see it (a function, UPDATE pg_settings), and the target reports that only at ReadyForQuery;
 * the gateway ends the session when it does (adapter.ts). Other text reads the same under any of them.
 */
const LEXING_SENSITIVE = /[^\x00-\x5b\x5d-\x7f]/;

const UNSETTLED_LEXING: Decision = {
  action: "deny",
  rule: "unsettled-settings",
  message: "text with a backslash or non-ASCII characters cannot follow another statement before Sync: the gateway must see the target's settings after that statement before it can read such text as the target will",
};

/** The reason an approval carries when the client's cancel request ended the wait. */
export const CLIENT_CANCEL = "cancelled by the client";

/** Fail closed: an operation whose audit record cannot be written does not run. */
const AUDIT_UNAVAILABLE = { sqlstate: "PX005", message: "portcullis: audit log unavailable; operation refused (fail closed)" };

export function policyStage(deps: PolicyStageDeps): MessageStage {
  const { session, connection } = deps;
  const { state } = deps;
  const refusals: Refusal[] = [];

  /** What a statement or portal the target holds would run. */
  const runs = (entry: PreparedStatement | Portal): StatementInfo[] => {
    if ("cursor" in entry) {
      if (entry.cursor) return deps.cache.classify(entry.text)[0]?.declares ? [deps.cache.classify(entry.text)[0]!.declares!.info] : UNKNOWN_CALL;
      return entry.statement ? runs(entry.statement) : UNKNOWN_CALL;
    }
    const infos = deps.cache.classify(entry.text);
    if (entry.sql) return infos[0]?.prepares ? [infos[0].prepares.info] : UNKNOWN_CALL;
    return infos;
  };
  /** A portal's operation; its exact text (what an approval binds to) only when it is a protocol statement's. */
  const preparedFor = (portal: Portal): Prepared => {
    const plain = !portal.cursor && portal.statement && !portal.statement.sql;
    return {
      infos: runs(portal),
      ...(plain ? { summary: deps.cache.facts(portal.text).summary, text: portal.text } : {}),
      ...(portal.params ? { params: portal.params } : {}),
    };
  };
  /**
   * EXECUTEs of a Query, each resolved to what the target will have under its name when it runs:
   * earlier statements of the same Query (PREPARE, DEALLOCATE, DISCARD ALL) count.
   */
  const resolveInOrder = (infos: StatementInfo[]): StatementInfo[] => {
    const local = new Map<string, StatementInfo | null>();
    const cursors = new Map<string, StatementInfo>();
    let cleared = false;
    return infos.map((s) => {
      const resolved = withCursorPath(resolveExecute(s, (name) => (local.has(name) ? local.get(name) ?? undefined : cleared ? undefined : preparedOne(name))), cursors);
      if (s.prepares) local.set(s.prepares.name, s.prepares.info);
      if (s.declares) cursors.set(s.declares.name, s.declares.info);
      if (s.deallocates === "*" || s.discardsAll) { local.clear(); cleared = true; }
      else if (s.deallocates !== undefined) local.set(s.deallocates, null);
      return resolved;
    });
  };
  /**
   * A FETCH or MOVE runs its cursor's query now: what that query does to the search_path, the FETCH
   * does. `declared`: cursors declared earlier in the same Query.
   */
  const withCursorPath = (s: StatementInfo, declared: Map<string, StatementInfo>): StatementInfo => {
    if (s.fetches === undefined) return s;
    const c = declared.has(s.fetches) ? undefined : state.portal(s.fetches);
    const query = declared.get(s.fetches) ?? (c && "known" in c && c.known.cursor ? deps.cache.classify(c.known.text)[0]?.declares?.info : undefined);
    const change = query && pathChangeOf(query);
    return change === undefined ? s : { ...s, setsSearchPath: change };
  };
  /** EXECUTE name inside a Query: what the target will have under that name when the statement runs. */
  const preparedOne = (name: string) => {
    const r = state.statement(name);
    return "known" in r ? runs(r.known)[0] : undefined;
  };
  /** Names an EXECUTE inside a Query uses whose definition is still unanswered from an earlier segment. */
  const executeWait = (infos: StatementInfo[]): Promise<void> | undefined => {
    for (const s of infos) {
      const name = s.executes ?? s.explainsExecute;
      if (name === undefined) continue;
      const r = state.statement(name);
      if ("wait" in r) return r.wait;
    }
    return undefined;
  };
  /** No rule names a schema: where unqualified names resolve does not matter. */
  const ANY_PATH: PathWalk = { path: "unknown", changed: false };

  /** Runs `use` with the search_path the message will run under, as the target will have it (session-objects.ts). */
  const withPath = (use: (w: PathWalk) => Verdict | undefined | Promise<Verdict | undefined>): Verdict | undefined | Promise<Verdict | undefined> =>
    deps.policy().usesSchemas ? whenResolved(() => state.searchPath(), (w) => use(w!)) : use(ANY_PATH);

  const judge = (p: Prepared, phase: "prepare" | "execute", w: PathWalk): { decision: Decision; ticket: OperationTicket } => {
    const resolved = resolveInOrder(p.infos);
    const decision = deps.policy().decide(session.principal, connection, { type: "sql", statements: resolved }, {
      searchPath: w.path,
      searchPathChanged: w.changed,
      initialSearchPath: deps.initialSearchPath,
      ...(deps.targetUser !== undefined ? { user: deps.targetUser } : {}),
    });
    return { decision, ticket: report(resolved, decision, phase, p.summary) };
  };

  const report = (resolved: StatementInfo[], decision: Decision, phase: "prepare" | "execute", summary?: string): OperationTicket => {
    // One statement (the common case) hands its own arrays on; several are merged.
    const one = resolved.length === 1 ? resolved[0] : undefined;
    const union = (pick: (s: StatementInfo) => readonly string[]) => (one ? [...pick(one)] : [...new Set(resolved.flatMap(pick))]);
    return session.decided({
      operation: {
        type: "sql",
        kinds: union((s) => s.kinds),
        tables: union((s) => s.tables),
        functions: union((s) => s.functions),
        ...(summary !== undefined ? { summary } : {}),
      },
      action: decision.action,
      ...(decision.rule !== undefined ? { rule: decision.rule } : {}),
      phase,
    });
  };

  /**
   * Replaces a refused message with one that fails at the target, and remembers to rewrite that
   * failure. `segment` is the refused message's segment, when the refusal comes after a wait.
   */
  const refuseWith = (sqlstate: string, message: string, fields: Pick<PgErrorSpec, "detail" | "position">, extended: boolean, segment = state.sent): Verdict => {
    const nonce = `portcullis_denied_${randomBytes(8).toString("hex")}`;
    const error = pgError({ severity: "ERROR", code: sqlstate, message, ...fields });
    refusals.push({ nonce: Buffer.from(nonce), error, segment });
    return { forward: [extended ? encode.parse("", nonce) : encode.query(nonce)] };
  };

  const refuse = (decision: Decision, sqlstate: string, extended: boolean): Verdict => {
    const text = decision.rule ? `portcullis: denied by rule ${decision.rule}` : "portcullis: denied";
    return refuseWith(sqlstate, decision.message ? `${text}: ${decision.message}` : text, decision.rule ? { detail: `rule: ${decision.rule}` } : {}, extended);
  };

  /** Containment's refusal of an operation policy allowed (a spent budget, a revoked identity). */
  const refuseFor = (r: ContainmentRefusal, extended: boolean): Verdict => refuseWith(sqlstateFor(r.code), r.message, {}, extended);

  /** A refusal of a name the gateway does not know: audited like any denial. */
  const refuseUnknown = (what: "statement" | "portal", name: string, sqlstate: string): Verdict => {
    const d = unknownName(what, name);
    deps.onOperation?.(report([], d, "execute").op, true);
    return refuseWith(sqlstate, d.message!, { detail: `portcullis: the gateway holds no ${what} of this name on this session` }, true);
  };

  /** A Query or Parse whose text does not parse: PostgreSQL's 42601, its message and position. */
  const refuseSyntax = (p: Prepared, extended: boolean): Verdict | undefined => {
    const error = p.infos.length === 1 ? p.infos[0]!.syntaxError : undefined;
    if (!error) return undefined;
    const d: Decision = { action: "deny", rule: SYNTAX_ERROR_RULE, message: error.message };
    deps.onOperation?.(report(p.infos, d, extended ? "prepare" : "execute").op, extended);
    return refuseWith("42601", error.message, { position: error.cursor + 1 }, extended);
  };

  /**
   * Text read the way the target will read it: when its reading depends on settings an earlier
   * statement may have changed, it waits for the target's answer to that statement (and the
   * ParameterStatus reports that come with it), or, within one pipeline segment, is refused.
   */
  const whenLexingSettled = (sql: string, extended: boolean, go: () => Verdict | undefined | Promise<Verdict | undefined>): Verdict | undefined | Promise<Verdict | undefined> => {
    if (!LEXING_SENSITIVE.test(sql)) return go();
    if (extended && state.ranInSegment) {
      deps.onOperation?.(report([], UNSETTLED_LEXING, "prepare").op, true);
      return refuse(UNSETTLED_LEXING, "0A000", true);
    }
    const wait = state.answered();
    return wait ? wait.then(go) : go();
  };

  /**
   * An allowed operation goes on once its audit record is committed; if the record cannot be
   * written, the operation is refused with PX005 instead.
   */
  const whenDurable = (ticket: OperationTicket, extended: boolean, heldSegment?: number): Verdict | undefined | Promise<Verdict | undefined> => {
    if (!ticket.durable) return undefined;
    // The segment is read now: by the time the commit settles, later frames may have moved it.
    const segment = heldSegment ?? state.sent;
    return ticket.durable.then(
      () => undefined,
      () => refuseWith(AUDIT_UNAVAILABLE.sqlstate, AUDIT_UNAVAILABLE.message, {}, extended, segment),
    );
  };

  /**
   * An operation a rule sends for approval: it runs on a grant the requester holds; otherwise it is
   * deferred (PX001 with the approval id) or held until decided (then it runs, or fails with PX002).
   */
  const approve = (decision: Decision, p: Prepared, ticket: OperationTicket, extended: boolean): Verdict | undefined | Promise<Verdict | undefined> => {
    const gate = deps.approvals;
    if (!gate || p.text === undefined) return refuse(decision, "42501", extended);
    const resolved = p.infos;
    const outcome = gate.evaluate({
      session,
      connection,
      rule: decision.rule!,
      operation: { type: "sql", text: p.text, view: (mask) => maskSqlValues(p.text!, mask), kinds: [...new Set(resolved.flatMap((s) => s.kinds))], tables: [...new Set(resolved.flatMap((s) => s.tables))] },
      keys: sqlOperationKeys(p.text, p.params),
      mode: deps.approvalMode ?? "hold",
    });
    if (outcome.kind === "run") return whenDurable({ op: ticket.op, ...(outcome.durable ? { durable: outcome.durable } : {}) }, extended);
    if (outcome.kind === "limited") return refuseWith("PX004", outcome.message, {}, extended);
    const id = outcome.approval.id;
    if (outcome.kind === "defer") {
      return refuseWith("PX001", `portcullis: approval required by rule ${decision.rule}: approval id ${id}`, { detail: `approval_id: ${id}` }, extended);
    }
    const segment = state.sent;
    return outcome.settled.then((r) => {
      if (r.kind === "run") return whenDurable({ op: ticket.op, ...(r.durable ? { durable: r.durable } : {}) }, extended, segment);
      const a = r.approval;
      if (a.state === "cancelled" && a.reason === CLIENT_CANCEL) {
        return refuseWith("57014", `portcullis: canceling statement due to user request (approval ${id} cancelled)`, { detail: `approval_id: ${id}` }, extended, segment);
      }
      return refuseWith("PX002", `portcullis: approval ${id} ${a.state}${a.reason ? `: ${a.reason}` : ""}`, { detail: `approval_id: ${id}` }, extended, segment);
    });
  };

  /** The texts a Query runs: its own, and those of the prepared statements its EXECUTEs run. */
  const executedTexts = (infos: StatementInfo[], sql: string): string => {
    const texts = [sql];
    for (const s of infos) {
      if (s.executes === undefined) continue;
      const r = state.statement(s.executes);
      if ("known" in r) texts.push(r.known.text);
    }
    return texts.join(";\n");
  };

  /** Masked data may only leave as masked output: a statement that would store it is refused before policy runs it. */
  const guarded = (p: Prepared, text: string, extended: boolean, go: () => Verdict | undefined | Promise<Verdict | undefined>): Verdict | undefined | Promise<Verdict | undefined> => {
    const verdict = deps.maskedStores?.(text, resolveInOrder(p.infos));
    if (!verdict) return go();
    const segment = state.sent;
    return verdict.then((stores) => {
      if (!stores) return go();
      const d: Decision = { action: "deny", rule: MASKED_STORE_RULE, message: MASKED_STORE_MESSAGE };
      deps.onOperation?.(report(resolveInOrder(p.infos), d, "execute", p.summary).op, extended);
      const text = `portcullis: denied by rule ${MASKED_STORE_RULE}: ${MASKED_STORE_MESSAGE}`;
      return refuseWith("42501", text, { detail: `rule: ${MASKED_STORE_RULE}` }, extended, segment);
    });
  };

  /** A statement about to run (a Query, or a portal's Execute): policy, containment, approval, audit. */
  const judgeRun = (prepared: Prepared, extended: boolean): Verdict | undefined | Promise<Verdict | undefined> => withPath((w) => {
    const { decision, ticket } = judge(prepared, "execute", w);
    deps.onOperation?.(ticket.op, extended);
    if (ticket.refusal) return refuseFor(ticket.refusal, extended);
    if (decision.action === "approve") return approve(decision, prepared, ticket, extended);
    if (decision.action !== "allow") return refuse(decision, "42501", extended);
    return whenDurable(ticket, extended);
  });

  /** A name is used once the target's answer says what it stands for (see session-objects.ts). */
  const whenResolved = <T>(resolve: () => Resolution<T>, use: (entry: T | undefined) => Verdict | undefined | Promise<Verdict | undefined>): Verdict | undefined | Promise<Verdict | undefined> => {
    const r = resolve();
    if ("known" in r) return use(r.known);
    if ("unknown" in r) return use(undefined);
    return r.wait.then(() => whenResolved(resolve, use));
  };

  const fromClient = (frame: Frame): Verdict | undefined | Promise<Verdict | undefined> => judgeMessage(frame);

  const judgeMessage = (frame: Frame): Verdict | undefined | Promise<Verdict | undefined> => {
    switch (frame.type) {
      case MSG.Query: {
        const sql = decodeQuery(frame);
        return whenLexingSettled(sql, false, () => {
          const prepared = { ...deps.cache.facts(sql), text: sql };
          const syntax = refuseSyntax(prepared, false);
          if (syntax) return syntax;
          const wait = executeWait(prepared.infos);
          if (wait) return wait.then(() => guarded(prepared, executedTexts(prepared.infos, sql), false, () => judgeRun(prepared, false)));
          return guarded(prepared, executedTexts(prepared.infos, sql), false, () => judgeRun(prepared, false));
        });
      }
      case MSG.Parse: {
        const { query } = decodeParse(frame);
        const prepared = { ...deps.cache.facts(query), text: query };
        return whenLexingSettled(query, true, () => refuseSyntax(prepared, true) ?? withPath((w) => {
          const { decision, ticket } = judge(prepared, "prepare", w);
          // A statement that needs approval may be prepared: it is its Execute that waits.
          if (decision.action === "deny") {
            deps.onOperation?.(ticket.op, true);
            return refuse(decision, "42501", true);
          }
          return undefined;
        }));
      }
      case MSG.Bind: {
        const { statement } = decodeBind(frame);
        return whenResolved(() => state.statement(statement), (entry) => (entry ? undefined : refuseUnknown("statement", statement, "26000")));
      }
      case MSG.Execute: {
        const { portal } = decodeExecute(frame);
        return whenResolved(() => state.portal(portal), (entry) => {
          if (!entry) return refuseUnknown("portal", portal, "34000");
          // Judged again by what it is now: the policy may have changed since Parse.
          const prepared = preparedFor(entry);
          return guarded(prepared, entry.statement ? entry.statement.text : entry.text, true, () => judgeRun(prepared, true));
        });
      }
      case MSG.FunctionCall: {
        // The fast-path call names a function by OID only: the gateway cannot say what it is.
        const { decision, ticket } = judge({ infos: UNKNOWN_CALL }, "execute", ANY_PATH);
        deps.onOperation?.(ticket.op, false);
        if (ticket.refusal) return refuseFor(ticket.refusal, false);
        if (decision.action !== "allow") return refuse(decision, "42501", false);
        return whenDurable(ticket, false);
      }
      default:
        return undefined;
    }
  };
  const fromServer = (frame: Frame): Verdict | undefined => {
    if (refusals.length === 0) return undefined;
    if (frame.type === MSG.ErrorResponse) {
      const i = refusals.findIndex((r) => frame.raw.includes(r.nonce));
      if (i >= 0) {
        const [r] = refusals.splice(i, 1);
        return { forward: [r!.error] };
      }
      return undefined;
    }
    if (frame.type === MSG.ReadyForQuery) {
      // state.done already counts this ReadyForQuery (the tracker sees the target's answers first). A refusal whose segment has ended without its error was skipped by the target after an
      // earlier error in the same segment; the client has had its error already.
      for (let i = refusals.length - 1; i >= 0; i--) if (refusals[i]!.segment < state.done) refusals.splice(i, 1);
    }
    return undefined;
  };

  return {
    fromClient,
    clientTypes: [MSG.Query, MSG.Parse, MSG.Bind, MSG.Execute, MSG.FunctionCall],
    fromServer,
    serverTypes: [MSG.ErrorResponse, MSG.ReadyForQuery],
  };
}

