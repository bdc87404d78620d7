/**
 * One backend pid for the agent: the gateway's. BackendKeyData carries the gateway's own pid (the
 * target's is not the agent's to know), so that what the server says agrees with it:
 * - on the way out, the session's real pid becomes its gateway pid in the rows of a segment that
 *   calls pg_backend_pid() (libpq's PQbackendPID and `select pg_backend_pid()` agree), and the pid
 *   of every notification sent by a session through the gateway becomes that session's gateway
 *   pid (clients skip their own notifications by comparing);
 * - on the way in, a gateway pid in pg_terminate_backend / pg_cancel_backend (a literal, or a
 *   parameter of a bound statement) becomes the real pid of that session, when the session is the
 *   same identity's on the same target. Gateway pids lie above any real one (cancel-keys.ts), so
 *   one that is not mapped names no backend.
 * Only whole values equal to the real pid are rewritten (decimal text, or a 4- or 8-byte integer),
 * in computed columns (no table) of an integer or text type when the result was described, and
 * only parameters the statement passes as the pid are mapped.
 */
import { parseStatementTrees } from "../../policy/sql/classify.js";
import { isObj, strings, unwrap } from "../../policy/sql/ast.js";
import type { Frame } from "./framer.js";
import { MSG, decodeBindNames, decodeQuery, encode } from "./messages.js";
import type { MessageStage, Verdict } from "./relay.js";
import { dataRowValues, decodeRowDescription, encodeDataRow } from "./rows.js";
import type { SessionState } from "./session-objects.js";

export interface BackendPids {
  /** This session's pid as the agent knows it, and its backend's real pid. */
  own: { gateway: number; real: number };
  /** The real pid behind a gateway pid of this identity's sessions on this target. */
  realOf(gatewayPid: number): number | undefined;
  /** The gateway pid of the session whose backend is `realPid`, on this target. */
  gatewayOf(realPid: number): number | undefined;
}

const T = {
  DataRow: 0x44, Notification: 0x41, ReadyForQuery: 0x5a, FunctionCall: 0x46, RowDescription: 0x54, CommandComplete: 0x43, PortalSuspended: 0x73, EmptyQuery: 0x49,
} as const;
const ASKS_PID = /pg_backend_pid/i;
const SIGNALS = /pg_(terminate|cancel)_backend/i;
const SIGNAL_FUNCTIONS = new Set(["pg_terminate_backend", "pg_cancel_backend"]);

/** Result column types pg_backend_pid() can arrive as (int2/4/8, numeric, text, varchar). */
const PID_TYPES = new Set([20, 21, 23, 1700, 25, 1043]);

export function backendPidStage(pids: BackendPids, state: SessionState<unknown>, calls: (sql: string) => readonly string[]): MessageStage {
  /** Per unanswered segment (each ends in one ReadyForQuery): whether it calls pg_backend_pid(). */
  const segments: boolean[] = [];
  let extended = false;
  /** Columns of the current result that may carry the pid (undefined: the result was not described). */
  let columns: boolean[] | undefined;
  const asksPid = (sql: string) => ASKS_PID.test(sql) && calls(sql).some((f) => f === "pg_backend_pid" || f === "pg_catalog.pg_backend_pid");

  const asIs = (value: Buffer, from: number): number | undefined => {
    if (value.length > 0 && value.length <= 10 && /^\d+$/.test(value.toString("latin1"))) return Number(value.toString("latin1")) === from ? 0 : undefined;
    if (value.length === 4 && value.readInt32BE(0) === from) return 4;
    if (value.length === 8 && value.readBigInt64BE(0) === BigInt(from)) return 8;
    return undefined;
  };
  /** `value` with `from` replaced by `to` in the same form, or undefined when it is not `from`. */
  const replaced = (value: Buffer, from: number, to: number): Buffer | undefined => {
    const form = asIs(value, from);
    if (form === undefined) return undefined;
    if (form === 0) return Buffer.from(String(to), "latin1");
    const out = Buffer.alloc(form);
    if (form === 4) out.writeInt32BE(to);
    else out.writeBigInt64BE(BigInt(to));
    return out;
  };

  const rows = (frame: Frame): Verdict | undefined => {
    if (!(segments.length ? segments[0] : extended)) return undefined;
    const values = dataRowValues(frame);
    let changed = false;
    values.forEach((v, i) => {
      if (columns && !columns[i]) return;
      const out = v && replaced(v, pids.own.real, pids.own.gateway);
      if (out) { values[i] = out; changed = true; }
    });
    return changed ? { forward: [encodeDataRow(values)] } : undefined;
  };

  const notification = (frame: Frame): Verdict | undefined => {
    const real = frame.raw.readInt32BE(5);
    const gateway = real === pids.own.real ? pids.own.gateway : pids.gatewayOf(real);
    if (gateway === undefined) return undefined;
    const out = Buffer.from(frame.raw);
    out.writeInt32BE(gateway, 5);
    return { forward: [out] };
  };

  /** A Query whose signal calls name gateway pids, with those literals replaced by real pids. */
  const query = (frame: Frame): Verdict | undefined => {
    const sql = decodeQuery(frame);
    segments.push(asksPid(sql));
    if (!SIGNALS.test(sql)) return undefined;
    const bytes = Buffer.from(sql, "utf8");
    const edits: { at: number; length: number; to: number }[] = [];
    for (const tree of parseStatementTrees(sql)) collectPidArguments(tree, (at, value) => {
      const real = pids.realOf(value);
      const digits = String(value);
      if (real !== undefined && bytes.toString("latin1", at, at + digits.length) === digits) edits.push({ at, length: digits.length, to: real });
    });
    if (edits.length === 0) return undefined;
    let out = bytes;
    for (const e of edits.sort((a, b) => b.at - a.at)) out = Buffer.concat([out.subarray(0, e.at), Buffer.from(String(e.to)), out.subarray(e.at + e.length)]);
    return { forward: [encode.query(out.toString("utf8"))] };
  };

  /** A Bind of a statement that signals a backend: parameters that are gateway pids become real pids. */
  const bind = (frame: Frame): Verdict | undefined | Promise<Verdict | undefined> => {
    const { statement } = decodeBindNames(frame);
    const r = state.statement(statement);
    if ("wait" in r) return r.wait.then(() => bind(frame));
    const text = "known" in r ? r.known.text : undefined;
    if (text === undefined) return undefined;
    if (asksPid(text)) extended = true;
    if (!SIGNALS.test(text)) return undefined;
    const params = new Set<number>();
    for (const tree of parseStatementTrees(text)) collectPidArguments(tree, () => undefined, (n) => params.add(n));
    if (params.size === 0) return undefined;
    const out = mapBindValues(frame.raw, params, (v) => {
      const asNumber = v.length <= 10 && /^\d+$/.test(v.toString("latin1")) ? Number(v.toString("latin1")) : v.length === 4 ? v.readInt32BE(0) : v.length === 8 ? Number(v.readBigInt64BE(0)) : undefined;
      const real = asNumber !== undefined ? pids.realOf(asNumber) : undefined;
      return real !== undefined ? replaced(v, asNumber!, real) : undefined;
    });
    return out ? { forward: [out] } : undefined;
  };

  return {
    fromClient: (frame) => {
      switch (frame.type) {
        case MSG.Query: return query(frame);
        case MSG.Bind: return bind(frame);
        case MSG.Sync: segments.push(extended); extended = false; return undefined;
        default: segments.push(false); return undefined; // a fast-path call ends in ReadyForQuery too
      }
    },
    clientTypes: [MSG.Query, MSG.Bind, MSG.Sync, T.FunctionCall],
    fromServer: (frame) => {
      switch (frame.type) {
        case T.DataRow: return rows(frame);
        case T.Notification: return notification(frame);
        case T.RowDescription: columns = decodeRowDescription(frame).map((f) => f.tableOid === 0 && PID_TYPES.has(f.typeOid)); return undefined;
        case T.ReadyForQuery: segments.shift(); columns = undefined; return undefined;
        default: columns = undefined; return undefined; // the result ended
      }
    },
    serverTypes: [T.DataRow, T.Notification, T.RowDescription, T.ReadyForQuery, T.CommandComplete, T.PortalSuspended, T.EmptyQuery],
  };
}

/**
 * The pid arguments of pg_terminate_backend / pg_cancel_backend: integer constants with their byte
 * offsets (`literal`), and parameter numbers (`param`), also under a cast.
 */
function collectPidArguments(node: unknown, literal: (at: number, value: number) => void, param: (n: number) => void = () => undefined): void {
  if (Array.isArray(node)) { for (const n of node) collectPidArguments(n, literal, param); return; }
  if (!isObj(node)) return;
  const w = unwrap(node);
  if (w?.[0] === "FuncCall" && SIGNAL_FUNCTIONS.has(strings(w[1].funcname).at(-1)?.toLowerCase() ?? "") && Array.isArray(w[1].args)) {
    let arg = unwrap(w[1].args[0]);
    if (arg?.[0] === "TypeCast") arg = unwrap(arg[1].arg);
    if (arg?.[0] === "A_Const" && isObj(arg[1].ival) && typeof arg[1].ival.ival === "number" && typeof arg[1].location === "number") literal(arg[1].location, arg[1].ival.ival);
    if (arg?.[0] === "ParamRef" && typeof arg[1].number === "number") param(arg[1].number);
  }
  for (const v of Object.values(node)) collectPidArguments(v, literal, param);
}

/** A Bind with the values of parameters `params` (1-based) passed through `map` (undefined: unchanged); undefined when none changed. */
function mapBindValues(raw: Buffer, params: ReadonlySet<number>, map: (value: Buffer) => Buffer | undefined): Buffer | undefined {
  let off = 5;
  off = raw.indexOf(0, off) + 1;
  off = raw.indexOf(0, off) + 1;
  const formatCount = raw.readUInt16BE(off);
  off += 2 + 2 * formatCount;
  const count = raw.readUInt16BE(off);
  off += 2;
  const parts: Buffer[] = [raw.subarray(5, off)];
  let changed = false;
  for (let i = 0; i < count; i++) {
    const len = raw.readInt32BE(off);
    off += 4;
    const value = len >= 0 ? raw.subarray(off, off + len) : undefined;
    off += Math.max(len, 0);
    const out = value && params.has(i + 1) ? map(value) : undefined;
    if (out) changed = true;
    const v = out ?? value;
    const head = Buffer.alloc(4);
    head.writeInt32BE(v ? v.length : -1);
    parts.push(head, ...(v ? [v] : []));
  }
  if (!changed) return undefined;
  parts.push(raw.subarray(off));
  return encode.message(MSG.Bind, ...parts);
}
