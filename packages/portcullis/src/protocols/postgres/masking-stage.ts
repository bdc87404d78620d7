/**
 * Masking on the PostgreSQL wire: every value that leaves the target toward the agent is masked
 * before the agent (or anything that records the session) sees it: DataRow values in text and
 * binary format, COPY TO STDOUT rows, ErrorResponse and NoticeResponse fields, NOTIFY payloads.
 *
 * Which statement produced which result is followed in protocol order: each Query statement,
 * Describe and Execute queues a result source; the target answers in the same order. A DataRow
 * whose columns the gateway cannot place is not guessed at: the session is ended (fail closed).
 */
import type { ColumnMask } from "../../masking/columns.js";
import { applyStrategy } from "../../masking/strategies.js";
import { parseStatementTrees, splitStatements } from "../../policy/sql/classify.js";
import { PortcullisError } from "../../errors.js";
import { copyFormatOf } from "./copy-format.js";
import { type CopyFormat, joinCopyLine, readCopyLine } from "./copy-text.js";
import type { Frame } from "./framer.js";
import { MSG, decodeBind, decodeErrorFields, decodeParameterStatus, decodeExecute, decodeParse, decodeQuery, decodeTarget, encode } from "./messages.js";
import type { MessageStage, Verdict } from "./relay.js";
import type { SessionState } from "./session-objects.js";
import type { ColumnAction, ResultPlanner } from "./result-plan.js";
import { type FieldDescription, bindResultFormats, copyOutFormat, dataRowValues, decodeRowDescription, encodeDataRow, formatOf } from "./rows.js";

/** Detector masking of free text: undefined when nothing was found. */
export interface TextMask {
  mask(text: string): string | undefined;
}

export interface MaskingStageDeps {
  planner: ResultPlanner;
  /** The session's statements and portals as the target confirmed them (shared with policy). */
  state: SessionState<Plan>;
  /** Detectors configured for this connection (none: undefined). */
  text?: TextMask;
  /** Per-deployment key of the `hash` strategy. */
  key: Buffer;
}

const T = {
  RowDescription: 0x54, DataRow: 0x44, CommandComplete: 0x43, EmptyQuery: 0x49, NoData: 0x6e, PortalSuspended: 0x73,
  Notification: 0x41, CopyOut: 0x48, CopyData: 0x64, CopyDone: 0x63, ParameterDescription: 0x74, FunctionCallResponse: 0x56,
} as const;

/** A statement that may redefine a table or view: cached catalog facts are dropped before its results. */
const DDL_WORDS = /\b(create|alter|drop|comment)\b/i;

/** Types whose text form is the value itself (masked text stays valid); others are nulled when masked. */
const TEXT_TYPES = new Set([25, 1043, 1042, 19, 18, 705, 142]);
const JSON_TYPES = new Set([114, 3802]);

export interface Plan {
  actions: ColumnAction[];
  types: number[];
  formats: number[];
}

/**
 * A result the target will send, queued in protocol order. Names are resolved when the answer
 * arrives, by the target's confirmations alone: that is the state the target ran the message in.
 */
interface Source {
  kind: "query" | "describe" | "execute";
  text?: string;
  /** Describe of a statement (name) or portal (name). */
  statement?: string;
  portal?: string;
  segment: number;
}

export function maskingStage(deps: MaskingStageDeps): MessageStage {
  const { planner, text } = deps;
  const { state } = deps;
  const sources: Source[] = [];
  let current: Plan | undefined;
  let copy: { format: CopyFormat; actions?: ColumnAction[] | "all"; header?: boolean } | undefined;
  let pendingLine = "";

  const maskText = (s: string): string | undefined => text?.mask(s);

  /** The text whose columns a portal's rows have: a cursor's DECLARE, or the bound statement's text. */
  const portalText = (name: string): string | undefined => {
    const p = state.confirmedPortal(name);
    return p?.cursor ? p.text : p?.statement?.text;
  };

  /**
   * FETCH and MOVE return the columns of the cursor's query; EXECUTE those of the prepared
   * statement, as the target holds them now. A name the gateway does not know gives no text: the
   * result's computed columns are then masked (fail closed).
   */
  const resultText = (statement: string): string | undefined => {
    if (!/^\s*(fetch|move|execute)\b/i.test(statement) && !/^\s*(--|\/\*)/.test(statement)) return statement;
    const tree = parseStatementTrees(statement)[0] as Record<string, { portalname?: string; name?: string }> | undefined;
    if (tree?.FetchStmt) return portalText(tree.FetchStmt.portalname ?? "");
    if (tree?.ExecuteStmt) return state.confirmedStatement(tree.ExecuteStmt.name ?? "")?.text;
    return statement;
  };

  /** One value under an action: the new bytes, null (SQL NULL), or undefined (unchanged). */
  const maskValue = (value: Buffer, action: ColumnAction, type: number, format: number): Buffer | null | undefined => {
    if (action.kind === "pass") return undefined;
    const textual = TEXT_TYPES.has(type) || JSON_TYPES.has(type) || type >= 16384;
    if (action.kind === "mask") return maskWhole(value, action.mask, type, format, deps.key);
    // Detectors: binary jsonb starts with a version byte; other binary values are scanned as bytes.
    const body = format === 1 && type === 3802 ? value.subarray(1) : value;
    const found = maskText(body.toString("utf8"));
    if (found === undefined) return undefined;
    if (format === 0 ? !textual && !JSON_TYPES.has(type) : !(TEXT_TYPES.has(type) || type === 3802)) return null;
    const out = Buffer.from(found, "utf8");
    return format === 1 && type === 3802 ? Buffer.concat([Buffer.from([1]), out]) : out;
  };

  const maskRow = (frame: Frame, plan: Plan): Verdict | undefined => {
    const values = dataRowValues(frame);
    let changed = false;
    for (let i = 0; i < values.length; i++) {
      const v = values[i];
      if (v === null || v === undefined) continue;
      const action = plan.actions[i] ?? { kind: "mask", mask: { strategy: "null", label: "unknown" } };
      const out = maskValue(v, action, plan.types[i] ?? 0, formatOf(plan.formats, i));
      if (out === undefined) continue;
      values[i] = out;
      changed = true;
    }
    return changed ? { forward: [encodeDataRow(values)] } : undefined;
  };

  /** A rule with `non_text: refuse` ends the session rather than NULL a column it cannot mask. */
  const refuseUnmaskable = (plan: Plan): void => {
    plan.actions.forEach((a, i) => {
      const type = plan.types[i] ?? 0;
      if (a.kind === "mask" && a.mask.refuseNonText && !(TEXT_TYPES.has(type) || JSON_TYPES.has(type))) {
        fatal(`portcullis: column ${i + 1} (${a.mask.label}) is masked and of a type that cannot carry the mask`);
      }
    });
  };

  const fatal = (why: string): never => {
    throw new PortcullisError("E_PROTOCOL", why);
  };

  /**
   * Errors and notices. Detectors scan every text field. With column rules, a field may carry a
   * value of a masked column in clear, so: anything a RAISE wrote (any SQLSTATE: RAISE picks its own)
   * and every notice is withheld; DETAIL, CONTEXT and the internal query are withheld (they quote rows:
   * `Failing row contains (...)`, `Key (email)=(...)`, XML parser lines). The message and hint of a
   * statement that reads a masked column (or whose text is unknown) are withheld too: they can carry a
   * value unquoted (`index 113 out of valid range`, a date built from character codes). Otherwise,
   * quoted text is kept only where the agent wrote it in its own statement (identifiers, literals).
   */
  const maskFields = (frame: Frame, statement: string | undefined, readsMasked = false): Verdict | undefined => {
    const fields = decodeErrorFields(frame);
    const code = fields.get("C") ?? "";
    const raised = code === "P0001" || fields.get("R") === "exec_stmt_raise" || frame.type === MSG.NoticeResponse;
    // The policy stage's refusal marker: rewritten into the gateway's own error later.
    const withheld = raised || (readsMasked && !deniedMarker(fields.get("M") ?? "", code));
    let changed = false;
    for (const key of ["M", "D", "H", "W", "q"]) {
      let v = fields.get(key);
      if (v === undefined) continue;
      const before = v;
      v = maskText(v) ?? v;
      if (planner.hasColumnRules) {
        if (withheld || key === "D" || key === "W" || key === "q") v = "[REDACTED: may carry masked data]";
        else v = v.replace(/"((?:[^"]|"")*)"/g, (q, inner: string) => (quotable(inner, statement, code) ? q : '"[REDACTED]"')).replace(/\)=\((.*)\)/g, ")=([REDACTED])");
      }
      if (v !== before) { fields.set(key, v); changed = true; }
    }
    return changed ? { forward: [encode.errorFields(frame.type, fields)] } : undefined;
  };

  /** Whether a failed statement read a masked column: its own text, or what its FETCH/EXECUTE runs. */
  const statementReadsMasked = async (statement: string | undefined): Promise<boolean> => {
    if (statement === undefined) return true;
    const runs = resultText(statement);
    if (runs === undefined) return true;
    for (const text of new Set([statement, runs])) if ((await planner.readsMaskedColumn(text)) !== false) return true;
    return false;
  };

  /** The text the agent sent for the result being answered (what an error may quote back). */
  const sourceText = (source: Source | undefined): string | undefined =>
    source?.text ?? (source?.statement !== undefined ? state.confirmedStatement(source.statement)?.text : source?.portal !== undefined ? portalText(source.portal) : undefined);

  const planFor = (source: Source | undefined, fields: FieldDescription[]): Promise<Plan> | Plan => {
    const types = fields.map((f) => f.typeOid);
    const portalName = source?.kind === "execute" ? source.portal ?? "" : source?.portal;
    const portal = portalName !== undefined ? state.confirmedPortal(portalName) : undefined;
    const formats = portal && !portal.cursor ? portal.formats : fields.map((f) => f.format);
    const textOf = source?.kind === "query" ? (source.text !== undefined ? resultText(source.text) : undefined)
      : source?.statement !== undefined ? state.confirmedStatement(source.statement)?.text
      : portalName !== undefined ? portalText(portalName) : undefined;
    return planner.plan(textOf, fields).then((actions) => ({ actions, types, formats }));
  };

  const fromClient = (frame: Frame): undefined => {
    follow(frame);
    return undefined;
  };

  /** Queues the result sources a client message will produce; never changes the message. */
  const follow = (frame: Frame): void => {
    switch (frame.type) {
      case MSG.Query: {
        const sql = decodeQuery(frame);
        if (DDL_WORDS.test(sql)) planner.invalidate();
        const parts = splitStatements(sql);
        if (!parts || parts.length === 0) sources.push({ kind: "query", segment: state.sent });
        else for (const p of parts) sources.push({ kind: "query", text: p, segment: state.sent });
        return undefined;
      }
      case MSG.Parse: {
        const { query } = decodeParse(frame);
        if (DDL_WORDS.test(query)) planner.invalidate();
        return undefined;
      }
      case MSG.Describe: {
        const { kind, name } = decodeTarget(frame);
        sources.push(kind === "S" ? { kind: "describe", statement: name, segment: state.sent } : { kind: "describe", portal: name, segment: state.sent });
        return undefined;
      }
      case MSG.Execute: {
        const { portal } = decodeExecute(frame);
        sources.push({ kind: "execute", portal, segment: state.sent });
        return undefined;
      }
      default:
        return undefined;
    }
  };

  const fromServer = (frame: Frame): Verdict | undefined | Promise<Verdict | undefined> => {
    switch (frame.type) {
      case T.RowDescription: {
        const head = sources[0];
        const fields = decodeRowDescription(frame);
        const plan = planFor(head, fields);
        const settle = (p: Plan): undefined => {
          if (head?.kind === "describe") {
            sources.shift();
            const described = head.statement !== undefined ? state.confirmedStatement(head.statement) : state.confirmedPortal(head.portal ?? "");
            if (described) described.memo = p;
          } else current = p;
          refuseUnmaskable(p);
          return undefined;
        };
        return plan instanceof Promise ? plan.then(settle) : settle(plan);
      }
      case T.NoData:
        if (sources[0]?.kind === "describe") sources.shift();
        return undefined;
      case T.DataRow: {
        if (!current && sources[0]?.kind === "execute") {
          const pt = state.confirmedPortal(sources[0].portal ?? "");
          const plan = pt?.memo ?? pt?.statement?.memo;
          if (plan) current = { ...plan, formats: pt && !pt.cursor ? pt.formats : plan.formats };
        }
        if (!current) return fatal("portcullis: cannot mask a result whose columns were never described");
        return maskRow(frame, current);
      }
      case T.CommandComplete:
      case T.EmptyQuery:
      case T.PortalSuspended:
        if (sources[0]?.kind === "query" || sources[0]?.kind === "execute") sources.shift();
        current = undefined;
        copy = undefined;
        return undefined;
      case MSG.ErrorResponse: {
        // The error answers the segment being processed now; a later segment's sources stay queued.
        const head = sources[0];
        const statement = head && head.segment === state.done ? sourceText(head) : undefined;
        if (head && head.segment === state.done) sources.shift();
        current = undefined;
        copy = undefined;
        if (!planner.hasColumnRules) return maskFields(frame, statement);
        return statementReadsMasked(statement).then((reads) => maskFields(frame, statement, reads));
      }
      case MSG.NoticeResponse:
        return maskFields(frame, undefined);
      case MSG.ParameterStatus: {
        // A reported setting (application_name) can carry any value the session put there; storing a
        // masked column in one is refused by policy (masked-stores.ts), detectors catch the rest.
        const [name, value] = decodeParameterStatus(frame);
        const masked = maskText(value);
        return masked === undefined ? undefined : { forward: [encode.parameterStatus(name, masked)] };
      }
      case T.Notification: {
        // pid, channel, payload
        const b = frame.raw;
        const chEnd = b.indexOf(0, 9);
        const payload = b.toString("utf8", chEnd + 1, b.length - 1);
        // pg_notify(channel, email) would carry a masked column out unseen: with column rules, payloads are withheld.
        const masked = planner.hasColumnRules && payload !== "" ? "[REDACTED]" : maskText(payload);
        if (masked === undefined) return undefined;
        return { forward: [encode.message(T.Notification, b.subarray(5, chEnd + 1), Buffer.from(`${masked}\0`, "utf8"))] };
      }
      case T.CopyOut: {
        if (copyOutFormat(frame) === 1 && !planner.inert) return fatal("portcullis: binary COPY output cannot be masked; use text or csv format");
        // A COPY run through Parse/Execute has its text on the portal's statement.
        const sql = sourceText(sources[0]) ?? "";
        const format = copyFormatOf(sql);
        if (format.unreadable && !planner.inert) return fatal(`portcullis: ${format.unreadable}; this COPY cannot be masked`);
        copy = { format, header: format.header };
        pendingLine = "";
        return planner.copyPlan(sql).then((actions) => {
          copy = { format, header: format.header, ...(actions ? { actions } : {}) };
          return undefined;
        });
      }
      case T.CopyData: {
        if (!copy || planner.inert) return undefined;
        // The server sends one row per CopyData message; a line split across messages is joined first.
        const line = pendingLine + frame.raw.toString("utf8", 5);
        if (!line.endsWith("\n")) { pendingLine = line; return { forward: [] }; }
        const whole = pendingLine === "";
        pendingLine = "";
        const kept = readCopyLine(line.slice(0, -1), copy.format);
        const fields = kept.map((x) => x.value);
        // The HEADER line holds column names: detectors only, never a column's mask.
        const header = copy.header === true;
        copy.header = false;
        // A line that does not split into the expected columns cannot be placed: mask every field.
        if (!header && Array.isArray(copy.actions) && copy.actions.length !== fields.length) copy.actions = "all";
        let changed = false;
        for (let i = 0; i < fields.length; i++) {
          // A NULL that may be a value printed like the NULL string is judged as that value.
          const v = fields[i] === null && copy.format.ambiguousNull && !header ? copy.format.null : fields[i];
          if (v === null || v === undefined) continue;
          const all: ColumnAction = { kind: "mask", mask: { strategy: "redact", label: "derived" } };
          const action: ColumnAction = header || copy.actions === undefined ? { kind: "detect" } : copy.actions === "all" ? all : copy.actions[i] ?? all;
          let out: string | null | undefined;
          if (action.kind === "mask") out = applyStrategy(v, action.mask.strategy, action.mask.label, deps.key);
          else if (action.kind === "detect") out = maskText(v);
          if (out === undefined) continue;
          fields[i] = out;
          changed = true;
        }
        if (!changed && whole) return undefined;
        return { forward: [encode.message(T.CopyData, Buffer.from(changed ? `${joinCopyLine(fields, copy.format, kept)}\n` : line, "utf8"))] };
      }
      case T.CopyDone:
        copy = undefined;
        return undefined;
      case T.FunctionCallResponse:
        // A fast-path call's result has no columns to place (policy denies these calls by default).
        return fatal("portcullis: the result of a fast-path function call cannot be masked");
      case MSG.ReadyForQuery:
        // state.done already counts this ReadyForQuery (the tracker sees the target's answers first). Sources of a finished segment that got no answer were skipped after an error.
        while (sources.length > 0 && sources[0]!.segment < state.done) sources.shift();
        current = undefined;
        copy = undefined;
        return undefined;
      default:
        return undefined;
    }
  };

  return {
    fromClient,
    clientTypes: [MSG.Query, MSG.Parse, MSG.Describe, MSG.Execute],
    fromServer,
    serverTypes: [
      T.RowDescription, T.DataRow, T.CommandComplete, T.EmptyQuery, T.PortalSuspended, T.NoData, MSG.ErrorResponse,
      MSG.NoticeResponse, MSG.ParameterStatus, T.Notification, T.CopyOut, T.CopyData, T.CopyDone, T.FunctionCallResponse, MSG.ReadyForQuery,
    ],
  };
}

/**
 * Quoted text an error may keep under column rules: what the agent wrote in its own statement, and
 * the marker of a statement the policy refused (only ever a syntax error: a masked value shaped like
 * one would leak nothing but that shape).
 */
function quotable(inner: string, statement: string | undefined, code: string): boolean {
  if (deniedMarker(`"${inner}"`, code)) return true;
  return statement !== undefined && inner !== "" && statement.includes(inner);
}

/** The syntax error the target gives for the marker the policy stage sends in place of a refused statement. */
function deniedMarker(message: string, code: string): boolean {
  return code === "42601" && /"portcullis_denied_[0-9a-f]{16}"/.test(message);
}

/** Masks a whole value under a column rule. Non-text values cannot hold a mask string: they become NULL. */
function maskWhole(value: Buffer, mask: ColumnMask, type: number, format: number, key: Buffer): Buffer | null {
  const jsonb = type === 3802 && format === 1;
  const raw = (jsonb ? value.subarray(1) : value).toString("utf8");
  const textual = TEXT_TYPES.has(type) || JSON_TYPES.has(type) || (type >= 16384 && format === 0);
  if (!textual) return null;
  const out = applyStrategy(raw, mask.strategy, mask.label, key);
  if (out === null) return null;
  if (JSON_TYPES.has(type)) {
    // A JSON column keeps valid JSON: the mask becomes a JSON string.
    const json = Buffer.from(JSON.stringify(out), "utf8");
    return jsonb ? Buffer.concat([Buffer.from([1]), json]) : json;
  }
  return Buffer.from(out, "utf8");
}
