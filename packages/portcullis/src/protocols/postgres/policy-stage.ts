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
import type { Session } from "../../core/sessions.js";
import type { Decision } from "../../policy/decision.js";
import type { PolicyEngine } from "../../policy/engine.js";
import type { ClassificationCache } from "../../policy/sql/cache.js";
import { type StatementInfo, normalizeSql, resolveExecute } from "../../policy/sql/classify.js";
import { type SearchPath, nextSearchPath } from "../../policy/sql/search-path.js";
import type { Frame } from "./framer.js";
import { MSG, decodeBind, decodeExecute, decodeParse, decodeQuery, encode, pgError } from "./messages.js";
import type { MessageStage, Verdict } from "./relay.js";
import { SessionObjects, TRACKED_CLIENT_TYPES } from "./session-objects.js";

export interface PolicyStageDeps {
  session: Session;
  connection: string;
  /** The policy in force now (it changes on reload). */
  policy: () => PolicyEngine;
  cache: ClassificationCache;
  /** Whether decision events carry a literal-free summary of the SQL (costs a parse per distinct text). */
  summarize: () => boolean;
  /** The session's search_path at login, or "unknown" when it was not asked for. */
  initialSearchPath: SearchPath;
  /** The target user (`$user` in search_path). */
  targetUser: string;
}

interface Refusal {
  nonce: Buffer;
  error: Buffer;
  /** RFQ-producing messages forwarded before this refusal's segment ends. */
  segment: number;
}

const unknownName = (what: "statement" | "portal", name: string): Decision => ({
  action: "deny",
  rule: what === "statement" ? "unknown-prepared-statement" : "unknown-portal",
  message: `${what === "statement" ? "prepared statement" : "portal"} "${name}" is not known to the gateway`,
});

export function policyStage(deps: PolicyStageDeps): MessageStage {
  const { session, connection } = deps;
  /** Prepared statements and portals: what each would run. */
  const objects = new SessionObjects<StatementInfo[], StatementInfo[]>();
  const { statements, portals } = objects;
  const refusals: Refusal[] = [];

  const preparedOne = (name: string) => statements.get(name)?.[0];
  let searchPath: SearchPath = deps.initialSearchPath;

  /** Applies session-state side effects of statements that were allowed to run. */
  const track = (infos: StatementInfo[]) => {
    for (const s of infos) {
      if (s.prepares) statements.set(s.prepares.name, [s.prepares.info]);
      if (s.declares) portals.set(s.declares.name, [s.declares.info]);
      if (s.deallocates === "*") statements.clear();
      else if (s.deallocates !== undefined) statements.delete(s.deallocates);
      searchPath = nextSearchPath(searchPath, deps.initialSearchPath, s.setsSearchPath);
    }
  };

  const judge = (infos: StatementInfo[], text: string | undefined): Decision => {
    const resolved = infos.map((s) => resolveExecute(s, preparedOne));
    const decision = deps.policy().decide(session.principal, connection, { type: "sql", statements: resolved }, {
      searchPath,
      initialSearchPath: deps.initialSearchPath,
      user: deps.targetUser,
    });
    const summary = text !== undefined && deps.summarize() ? normalizeSql(text) : undefined;
    // One statement (the common case) hands its own arrays on; several are merged.
    const one = resolved.length === 1 ? resolved[0] : undefined;
    const union = (pick: (s: StatementInfo) => readonly string[]) => (one ? [...pick(one)] : [...new Set(resolved.flatMap(pick))]);
    session.decided({
      operation: {
        type: "sql",
        kinds: union((s) => s.kinds),
        tables: union((s) => s.tables),
        functions: union((s) => s.functions),
        ...(summary !== undefined ? { summary } : {}),
      },
      action: decision.action,
      ...(decision.rule !== undefined ? { rule: decision.rule } : {}),
    });
    return decision;
  };

  /** Replaces a refused message with one that fails at the target, and remembers to rewrite that failure. */
  const refuse = (decision: Decision, sqlstate: string, extended: boolean): Verdict => {
    const nonce = `portcullis_denied_${randomBytes(8).toString("hex")}`;
    const text = decision.rule ? `portcullis: denied by rule ${decision.rule}` : "portcullis: denied";
    const error = pgError({
      severity: "ERROR",
      code: sqlstate,
      message: decision.message ? `${text}: ${decision.message}` : text,
      ...(decision.rule ? { detail: `rule: ${decision.rule}` } : {}),
    });
    refusals.push({ nonce: Buffer.from(nonce), error, segment: objects.sent });
    return { forward: [extended ? encode.parse("", nonce) : encode.query(nonce)] };
  };

  const fromClient = (frame: Frame): Verdict | undefined => {
    const verdict = judgeMessage(frame);
    objects.afterClient(frame);
    return verdict;
  };

  const judgeMessage = (frame: Frame): Verdict | undefined => {
    switch (frame.type) {
      case MSG.Query: {
        const sql = decodeQuery(frame);
        const infos = deps.cache.classify(sql);
        const d = judge(infos, sql);
        const verdict = d.action === "allow" ? undefined : refuse(d, "42501", false);
        if (!verdict) track(infos);
        return verdict;
      }
      case MSG.Parse: {
        const { name, query } = decodeParse(frame);
        const infos = deps.cache.classify(query);
        const d = judge(infos, query);
        if (d.action !== "allow") return refuse(d, "42501", true);
        statements.set(name, infos);
        return undefined;
      }
      case MSG.Bind: {
        const { portal, statement } = decodeBind(frame);
        const infos = statements.get(statement);
        if (!infos) return refuse(unknownName("statement", statement), "26000", true);
        portals.set(portal, infos);
        return undefined;
      }
      case MSG.Execute: {
        const { portal } = decodeExecute(frame);
        const infos = portals.get(portal);
        if (!infos) return refuse(unknownName("portal", portal), "34000", true);
        // Judged again by what it is now: the policy may have changed since Parse.
        const d = judge(infos, undefined);
        if (d.action !== "allow") return refuse(d, "42501", true);
        track(infos);
        return undefined;
      }
      case MSG.FunctionCall: {
        // The fast-path call names a function by OID only: the gateway cannot say what it is.
        const d = judge([{ kinds: ["unknown"], actions: [{ kind: "unknown" }], tables: [], functions: [], error: "fast-path function call" }], undefined);
        return d.action === "allow" ? undefined : refuse(d, "42501", false);
      }
      default:
        return undefined;
    }
  };

  const fromServer = (frame: Frame): Verdict | undefined => {
    if (refusals.length === 0) {
      if (frame.type === MSG.ReadyForQuery) objects.readyForQuery();
      return undefined;
    }
    if (frame.type === MSG.ErrorResponse) {
      const i = refusals.findIndex((r) => frame.raw.includes(r.nonce));
      if (i >= 0) {
        const [r] = refusals.splice(i, 1);
        return { forward: [r!.error] };
      }
      return undefined;
    }
    if (frame.type === MSG.ReadyForQuery) {
      objects.readyForQuery();
      // A refusal whose segment has ended without its error was skipped by the target after an
      // earlier error in the same segment; the client has had its error already.
      for (let i = refusals.length - 1; i >= 0; i--) if (refusals[i]!.segment < objects.done) refusals.splice(i, 1);
    }
    return undefined;
  };

  return {
    fromClient,
    clientTypes: [MSG.Parse, MSG.Bind, MSG.Execute, ...TRACKED_CLIENT_TYPES],
    fromServer,
    serverTypes: [MSG.ErrorResponse, MSG.ReadyForQuery],
  };
}

