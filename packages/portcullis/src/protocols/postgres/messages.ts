/**
 * Decoders and encoders for the PostgreSQL messages the gateway itself must understand or
 * produce: the startup phase, authentication, and errors. Everything else is forwarded as
 * raw frames. Pure functions over Buffers; a malformed message throws E_PROTOCOL.
 * Reference: https://www.postgresql.org/docs/current/protocol-message-formats.html
 */
import { isUtf8 } from "node:buffer";
import { PortcullisError } from "../../errors.js";
import type { Frame } from "./framer.js";

export const PROTOCOL_3_0 = 196608;
export const SSL_REQUEST_CODE = 80877103;
export const GSSENC_REQUEST_CODE = 80877104;
export const CANCEL_REQUEST_CODE = 80877102;
/** PostgreSQL's own limit on a startup packet: MAX_STARTUP_PACKET_LENGTH (10000) bytes after the length word. */
export const MAX_STARTUP_PACKET = 10_004;

export const MSG = {
  // frontend
  Query: 0x51, Parse: 0x50, Bind: 0x42, Describe: 0x44, Execute: 0x45, Sync: 0x53, Close: 0x43,
  Flush: 0x48, Terminate: 0x58, Password: 0x70, CopyData: 0x64, CopyDone: 0x63, CopyFail: 0x66,
  FunctionCall: 0x46,
  // backend
  Authentication: 0x52, ParameterStatus: 0x53, BackendKeyData: 0x4b, ReadyForQuery: 0x5a,
  ErrorResponse: 0x45, NoticeResponse: 0x4e, NegotiateProtocolVersion: 0x76, DataRow: 0x44,
} as const;

export const AUTH = { Ok: 0, CleartextPassword: 3, MD5Password: 5, SASL: 10, SASLContinue: 11, SASLFinal: 12 } as const;

const protocolError = (msg: string) => new PortcullisError("E_PROTOCOL", msg);

/**
 * Reads a NUL-terminated UTF-8 string at `off`; returns it and the offset after the NUL. Bytes that
 * are not valid UTF-8 are refused, never replaced: PostgreSQL refuses them too, and two different
 * byte strings must never read as one (statement names, SQL text the policy judges).
 */
function readCString(buf: Buffer, off: number): [string, number] {
  const end = buf.indexOf(0, off);
  if (end < 0) throw protocolError("unterminated string");
  const bytes = buf.subarray(off, end);
  if (!isUtf8(bytes)) throw protocolError('invalid byte sequence for encoding "UTF8"');
  return [bytes.toString("utf8"), end + 1];
}

// ---------------------------------------------------------------- startup phase (frontend)

export type StartupPacket =
  | { kind: "ssl" }
  | { kind: "gssenc" }
  | { kind: "cancel"; processId: number; secretKey: number }
  | { kind: "startup"; major: number; minor: number; params: Map<string, string>; unsupportedOptions: string[] };

export function decodeStartupPacket(packet: Buffer): StartupPacket {
  if (packet.length < 8) throw protocolError("short startup packet");
  const code = packet.readInt32BE(4);
  if (code === SSL_REQUEST_CODE || code === GSSENC_REQUEST_CODE) {
    if (packet.length !== 8) throw protocolError("invalid encryption request length");
    return { kind: code === SSL_REQUEST_CODE ? "ssl" : "gssenc" };
  }
  if (code === CANCEL_REQUEST_CODE) {
    if (packet.length !== 16) throw protocolError("invalid cancel request length");
    return { kind: "cancel", processId: packet.readInt32BE(8), secretKey: packet.readInt32BE(12) };
  }
  const major = code >>> 16;
  const minor = code & 0xffff;
  if (major !== 3) throw new PortcullisError("E_PROTOCOL", `unsupported frontend protocol ${major}.${minor}`);
  const params = new Map<string, string>();
  const unsupportedOptions: string[] = [];
  let off = 8;
  for (;;) {
    if (off >= packet.length) throw protocolError("invalid startup packet layout: expected terminator as last byte");
    const [name, next] = readCString(packet, off);
    if (name === "") {
      // An empty name is the terminator, and only the terminator: PostgreSQL refuses anything after it.
      if (next !== packet.length) throw protocolError("invalid startup packet layout: expected terminator as last byte");
      break;
    }
    const [value, after] = readCString(packet, next);
    off = after;
    if (name.startsWith("_pq_.")) unsupportedOptions.push(name);
    else if (params.has(name)) throw protocolError(`duplicate startup parameter "${name}"`);
    else params.set(name, value);
  }
  return { kind: "startup", major, minor, params, unsupportedOptions };
}

export function decodePassword(frame: Frame): string {
  if (frame.type !== MSG.Password) throw protocolError("expected a password message");
  const [pw, end] = readCString(frame.raw, 5);
  if (end !== frame.raw.length) throw protocolError("invalid password message");
  return pw;
}

// ---------------------------------------------------------------- query messages (frontend)

export function decodeQuery(frame: Frame): string {
  return readCString(frame.raw, 5)[0];
}

export function decodeParse(frame: Frame): { name: string; query: string } {
  const [name, next] = readCString(frame.raw, 5);
  const [query] = readCString(frame.raw, next);
  return { name, query };
}

export interface Bind {
  portal: string;
  statement: string;
  /** How many parameter values the Bind carries (not decoded: only walked). */
  paramCount: number;
  /** Result-column format codes: [] = all text, [f] = all f, else one per column. */
  resultFormats: number[];
}

/**
 * Reads a Bind whole, as PostgreSQL's exec_bind_message does: counts are unsigned 16-bit, a value
 * length is -1 (NULL) or fits in what is left, format codes are 0 or 1, nothing follows the last
 * field. Anything else is refused in PostgreSQL's words, never read differently from the target.
 */
export function decodeBind(frame: Frame): Bind {
  const b = frame.raw;
  const [portal, afterPortal] = readCString(b, 5);
  const [statement, afterStatement] = readCString(b, afterPortal);
  let off = afterStatement;
  const need = (n: number) => {
    if (n < 0 || n > b.length - off) throw protocolError("insufficient data left in message");
  };
  const count = () => { need(2); const n = b.readUInt16BE(off); off += 2; return n; };
  const formats = () => {
    const n = count();
    need(2 * n);
    const out: number[] = new Array(n);
    for (let i = 0; i < n; i++, off += 2) {
      const f = b.readInt16BE(off);
      if (f !== 0 && f !== 1) throw protocolError(`unsupported format code: ${f}`);
      out[i] = f;
    }
    return out;
  };
  const paramFormats = formats();
  const paramCount = count();
  if (paramFormats.length > 1 && paramFormats.length !== paramCount) {
    throw protocolError(`bind message has ${paramFormats.length} parameter formats but ${paramCount} parameters`);
  }
  for (let i = 0; i < paramCount; i++) {
    need(4);
    const len = b.readInt32BE(off);
    off += 4;
    if (len === -1) continue;
    need(len);
    off += len;
  }
  const resultFormats = formats();
  if (off !== b.length) throw protocolError("invalid message format");
  return { portal, statement, paramCount, resultFormats };
}

/** The portal and statement names of a Bind, without walking its parameters (the relay's policy stage has validated it whole). */
export function decodeBindNames(frame: Frame): { portal: string; statement: string } {
  const [portal, next] = readCString(frame.raw, 5);
  return { portal, statement: readCString(frame.raw, next)[0] };
}

export function decodeExecute(frame: Frame): { portal: string } {
  return { portal: readCString(frame.raw, 5)[0] };
}

/** Close and Describe: 'S' (statement) or 'P' (portal), and the name. */
export function decodeTarget(frame: Frame): { kind: "S" | "P"; name: string } {
  if (frame.raw.length < 7) throw protocolError("short Close/Describe message");
  const k = frame.raw[5];
  if (k !== 0x53 && k !== 0x50) throw protocolError("invalid Close/Describe target");
  return { kind: k === 0x53 ? "S" : "P", name: readCString(frame.raw, 6)[0] };
}

// ---------------------------------------------------------------- backend messages (decode)

export function decodeAuthentication(frame: Frame): { code: number; data: Buffer } {
  if (frame.raw.length < 9) throw protocolError("short authentication message");
  return { code: frame.raw.readInt32BE(5), data: frame.raw.subarray(9) };
}

export function decodeParameterStatus(frame: Frame): [string, string] {
  const [name, next] = readCString(frame.raw, 5);
  const [value] = readCString(frame.raw, next);
  return [name, value];
}

export function decodeBackendKeyData(frame: Frame): { processId: number; secretKey: number } {
  if (frame.raw.length !== 13) throw protocolError("invalid BackendKeyData");
  return { processId: frame.raw.readInt32BE(5), secretKey: frame.raw.readInt32BE(9) };
}

/** Fields of an ErrorResponse or NoticeResponse, keyed by field code ('C' = SQLSTATE, 'M' = message...). */
export function decodeErrorFields(frame: Frame): Map<string, string> {
  const fields = new Map<string, string>();
  let off = 5;
  while (off < frame.raw.length && frame.raw[off] !== 0) {
    const code = String.fromCharCode(frame.raw[off]!);
    const [value, next] = readCString(frame.raw, off + 1);
    fields.set(code, value);
    off = next;
  }
  return fields;
}

// ---------------------------------------------------------------- encoders

/** Builds a typed message from its body parts. */
function message(type: number, ...parts: Buffer[]): Buffer {
  const bodyLen = parts.reduce((n, p) => n + p.length, 0);
  const out = Buffer.allocUnsafe(5 + bodyLen);
  out[0] = type;
  out.writeInt32BE(4 + bodyLen, 1);
  let off = 5;
  for (const p of parts) off += p.copy(out, off);
  return out;
}

const int32 = (n: number) => { const b = Buffer.allocUnsafe(4); b.writeInt32BE(n); return b; };
const int16 = (n: number) => { const b = Buffer.allocUnsafe(2); b.writeInt16BE(n); return b; };
const cstr = (s: string) => Buffer.from(`${s}\0`, "utf8");

export const encode = {
  /** Any typed message from its body parts (length computed). */
  message,
  authentication: (code: number, data: Buffer = Buffer.alloc(0)) => message(MSG.Authentication, int32(code), data),
  parameterStatus: (name: string, value: string) => message(MSG.ParameterStatus, cstr(name), cstr(value)),
  backendKeyData: (processId: number, secretKey: number) => message(MSG.BackendKeyData, int32(processId), int32(secretKey)),
  readyForQuery: (status: number) => message(MSG.ReadyForQuery, Buffer.from([status])),
  negotiateProtocolVersion: (minor: number, options: string[]) =>
    message(MSG.NegotiateProtocolVersion, int32(PROTOCOL_3_0 + minor), int32(options.length), ...options.map(cstr)),

  /** ErrorResponse or NoticeResponse from named fields. */
  errorFields(type: number, fields: Iterable<[string, string]>): Buffer {
    const parts: Buffer[] = [];
    for (const [code, value] of fields) parts.push(Buffer.from(code, "latin1"), cstr(value));
    parts.push(Buffer.from([0]));
    return message(type, ...parts);
  },

  // frontend messages, for the gateway's own login to a target
  startup(params: Map<string, string> | Record<string, string>): Buffer {
    const entries = params instanceof Map ? [...params] : Object.entries(params);
    const parts = entries.flatMap(([k, v]) => [cstr(k), cstr(v)]);
    const body = Buffer.concat([int32(PROTOCOL_3_0), ...parts, Buffer.from([0])]);
    return Buffer.concat([int32(body.length + 4), body]);
  },
  sslRequest: () => Buffer.concat([int32(8), int32(SSL_REQUEST_CODE)]),
  cancelRequest: (processId: number, secretKey: number) =>
    Buffer.concat([int32(16), int32(CANCEL_REQUEST_CODE), int32(processId), int32(secretKey)]),
  password: (text: string) => message(MSG.Password, cstr(text)),
  saslInitialResponse: (mechanism: string, data: Buffer) => message(MSG.Password, cstr(mechanism), int32(data.length), data),
  saslResponse: (data: Buffer) => message(MSG.Password, data),
  terminate: () => message(MSG.Terminate),
  query: (sql: string) => message(MSG.Query, cstr(sql)),
  parse: (name: string, sql: string) => message(MSG.Parse, cstr(name), cstr(sql), int16(0)),
  int16,
};

export interface PgErrorSpec {
  severity: "ERROR" | "FATAL" | "NOTICE" | "WARNING";
  code: string;
  message: string;
  detail?: string;
  hint?: string;
  /** Where in the statement text the error is: a 1-based character index, as PostgreSQL's P field. */
  position?: number;
}

/** An ErrorResponse (or NoticeResponse) the gateway speaks in its own name. */
export function pgError(spec: PgErrorSpec, type: number = MSG.ErrorResponse): Buffer {
  const fields: [string, string][] = [["S", spec.severity], ["V", spec.severity], ["C", spec.code], ["M", spec.message]];
  if (spec.detail) fields.push(["D", spec.detail]);
  if (spec.hint) fields.push(["H", spec.hint]);
  if (spec.position !== undefined) fields.push(["P", String(spec.position)]);
  return encode.errorFields(type, fields);
}
