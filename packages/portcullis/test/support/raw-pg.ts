/**
 * A tiny raw-socket PostgreSQL frontend for tests that must send what no real client would:
 * packets are built by hand here (independently of src/), and whatever comes back is read as
 * typed messages or raw bytes.
 */
import { connect, type Socket } from "node:net";

export const PROTOCOL_3_0 = 196608;

const int32 = (n: number) => { const b = Buffer.alloc(4); b.writeInt32BE(n); return b; };

/** Untyped startup-phase packet: int32 length (counting itself) + int32 code + body. */
export function untyped(code: number, body: Buffer = Buffer.alloc(0)): Buffer {
  return Buffer.concat([int32(8 + body.length), int32(code), body]);
}

/** StartupMessage from name/value pairs; `body` overrides the whole parameter list verbatim. */
export function startupPacket(params: Record<string, string>, protocol = PROTOCOL_3_0): Buffer {
  const parts = Object.entries(params).map(([k, v]) => `${k}\0${v}\0`).join("");
  return untyped(protocol, Buffer.from(`${parts}\0`, "utf8"));
}

export const sslRequest = () => untyped(80877103);
export const gssencRequest = () => untyped(80877104);
export const cancelRequest = (processId: number, secretKey: number) =>
  untyped(80877102, Buffer.concat([int32(processId), int32(secretKey)]));

/** A typed message: type byte + int32 length (counting itself) + body. */
export function typed(type: string, body: Buffer | string = Buffer.alloc(0)): Buffer {
  const b = typeof body === "string" ? Buffer.from(body, "utf8") : body;
  return Buffer.concat([Buffer.from(type, "latin1"), int32(4 + b.length), b]);
}

export const passwordMessage = (text: string) => typed("p", `${text}\0`);
export const queryMessage = (sql: string) => typed("Q", `${sql}\0`);
export const terminateMessage = () => typed("X");

/** Extended-protocol messages with text parameters and results (no parameter types, formats or values). */
const cstr = (s: string) => Buffer.from(`${s}\0`);
const i16 = (n: number) => { const b = Buffer.alloc(2); b.writeInt16BE(n); return b; };
export const parseMessage = (name: string, sql: string) => typed("P", Buffer.concat([cstr(name), cstr(sql), i16(0)]));
export const bindMessage = (portal: string, statement: string) => typed("B", Buffer.concat([cstr(portal), cstr(statement), i16(0), i16(0), i16(0)]));
export const executeMessage = (portal: string, maxRows = 0) => typed("E", Buffer.concat([cstr(portal), int32(maxRows)]));
export const closeMessage = (kind: "S" | "P", name: string) => typed("C", Buffer.concat([Buffer.from(kind), cstr(name)]));
export const syncMessage = () => typed("S");

export interface PgMessage {
  type: string;
  body: Buffer;
}

/** Fields of an ErrorResponse/NoticeResponse body, keyed by field code. */
export function errorFields(body: Buffer): Record<string, string> {
  const out: Record<string, string> = {};
  let off = 0;
  while (off < body.length && body[off] !== 0) {
    const end = body.indexOf(0, off + 1);
    if (end < 0) break;
    out[String.fromCharCode(body[off]!)] = body.toString("utf8", off + 1, end);
    off = end + 1;
  }
  return out;
}

export class RawPg {
  private buf = Buffer.alloc(0);
  private wake?: () => void;
  /** The peer ended its side (FIN). */
  ended = false;
  /** The socket is fully closed. */
  closed = false;
  error?: Error;

  private constructor(readonly socket: Socket) {
    socket.on("data", (chunk: Buffer) => { this.buf = Buffer.concat([this.buf, chunk]); this.wake?.(); });
    socket.on("end", () => { this.ended = true; this.wake?.(); });
    socket.on("close", () => { this.closed = true; this.wake?.(); });
    socket.on("error", (err) => { this.error = err; this.wake?.(); });
  }

  /** With `allowHalfOpen`, the socket stays writable after the peer ended its side. */
  static connect(port: number, host = "127.0.0.1", opts: { allowHalfOpen?: boolean } = {}): Promise<RawPg> {
    return new Promise((resolve, reject) => {
      const socket = connect({ host, port, noDelay: true, allowHalfOpen: opts.allowHalfOpen ?? false });
      socket.once("connect", () => { socket.off("error", reject); resolve(new RawPg(socket)); });
      socket.once("error", reject);
    });
  }

  /** Writes bytes; resolves once handed to the kernel (or the socket failed). */
  write(data: Buffer): Promise<void> {
    return new Promise((resolve) => {
      if (this.socket.destroyed) return resolve();
      this.socket.write(data, () => resolve());
    });
  }

  /** Bytes received and not yet read. */
  get pending(): number {
    return this.buf.length;
  }

  private async waitFor(ready: () => boolean, timeoutMs: number, what: string): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!ready()) {
      if (this.ended || this.closed) throw new Error(`connection closed while waiting for ${what} (${this.buf.length} bytes pending)`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.wake = () => { clearTimeout(timer); resolve(); };
      });
      this.wake = undefined;
    }
  }

  async readBytes(n: number, timeoutMs = 5000): Promise<Buffer> {
    await this.waitFor(() => this.buf.length >= n, timeoutMs, `${n} bytes`);
    const out = this.buf.subarray(0, n);
    this.buf = this.buf.subarray(n);
    return out;
  }

  private messageReady(): boolean {
    return this.buf.length >= 5 && this.buf.length >= 1 + this.buf.readInt32BE(1);
  }

  async readMessage(timeoutMs = 5000): Promise<PgMessage> {
    await this.waitFor(() => this.messageReady(), timeoutMs, "a message");
    const len = this.buf.readInt32BE(1);
    const msg = { type: String.fromCharCode(this.buf[0]!), body: Buffer.from(this.buf.subarray(5, 1 + len)) };
    this.buf = this.buf.subarray(1 + len);
    return msg;
  }

  /** Reads messages up to and including the first of type `type` (or an ErrorResponse when `stopOnError`). */
  async readUntil(type: string, timeoutMs = 5000, stopOnError = true): Promise<PgMessage[]> {
    const out: PgMessage[] = [];
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const m = await this.readMessage(Math.max(1, deadline - Date.now()));
      out.push(m);
      if (m.type === type || (stopOnError && m.type === "E")) return out;
    }
  }

  /**
   * Waits for the peer to close, and returns every whole message it sent first plus any trailing
   * bytes that do not form a message.
   */
  async readToClose(timeoutMs = 5000): Promise<{ messages: PgMessage[]; trailing: Buffer; error?: Error }> {
    await this.waitFor(() => this.ended || this.closed, timeoutMs, "the connection to close").catch((err: Error) => {
      if (!/connection closed/.test(err.message)) throw err;
    });
    const messages: PgMessage[] = [];
    while (this.messageReady()) messages.push(await this.readMessage(0));
    const trailing = this.buf;
    this.buf = Buffer.alloc(0);
    return { messages, trailing, ...(this.error ? { error: this.error } : {}) };
  }

  end(): void {
    this.socket.end();
  }

  destroy(): void {
    this.socket.destroy();
  }
}

export interface RawSession {
  conn: RawPg;
  processId: number;
  secretKey: number;
  parameters: Record<string, string>;
  /** Every message the gateway sent during login, in order. */
  messages: PgMessage[];
}

/** Completes the rest of a login on `conn` once the StartupMessage was sent: cleartext password → ReadyForQuery. */
export async function finishLogin(conn: RawPg, password: string): Promise<Omit<RawSession, "conn">> {
  const messages: PgMessage[] = [];
  let m = await conn.readMessage();
  messages.push(m);
  if (m.type === "v") { m = await conn.readMessage(); messages.push(m); }
  if (m.type === "E") throw new Error(`login refused: ${JSON.stringify(errorFields(m.body))}`);
  if (m.type !== "R" || m.body.readInt32BE(0) !== 3) throw new Error(`expected AuthenticationCleartextPassword, got '${m.type}'`);
  await conn.write(passwordMessage(password));
  const rest = await conn.readUntil("Z", 15_000);
  messages.push(...rest);
  const err = rest.find((x) => x.type === "E");
  if (err) throw new Error(`login refused: ${JSON.stringify(errorFields(err.body))}`);
  const parameters: Record<string, string> = {};
  let processId = -1;
  let secretKey = 0;
  for (const x of rest) {
    if (x.type === "S") {
      const nul = x.body.indexOf(0);
      parameters[x.body.toString("utf8", 0, nul)] = x.body.toString("utf8", nul + 1, x.body.length - 1);
    } else if (x.type === "K") {
      processId = x.body.readInt32BE(0);
      secretKey = x.body.readInt32BE(4);
    }
  }
  if (rest[0]?.type !== "R" || rest[0].body.readInt32BE(0) !== 0) throw new Error("expected AuthenticationOk");
  return { processId, secretKey, parameters, messages };
}

/** Connects and logs in with a token as the password. */
export async function rawLogin(
  port: number, token: string, database = "app", extra: Record<string, string> = {}, opts: { allowHalfOpen?: boolean } = {},
): Promise<RawSession> {
  const conn = await RawPg.connect(port, "127.0.0.1", opts);
  await conn.write(startupPacket({ user: "agent", database, ...extra }));
  return { conn, ...(await finishLogin(conn, token)) };
}

export interface QueryResult {
  rows: (string | null)[][];
  tag?: string;
  error?: Record<string, string>;
  messages: PgMessage[];
}

/** Sends frames in one write (a pipeline) and reads `segments` ReadyForQuery answers; returns every message. */
export async function exchange(conn: RawPg, frames: Buffer[], segments: number, timeoutMs = 15_000): Promise<PgMessage[]> {
  await conn.write(Buffer.concat(frames));
  const out: PgMessage[] = [];
  for (let i = 0; i < segments; i++) out.push(...(await conn.readUntil("Z", timeoutMs, false)));
  return out;
}

/** Text values of a DataRow body (null for NULL). */
export function dataRowTexts(body: Buffer): (string | null)[] {
  const row: (string | null)[] = [];
  let off = 2;
  for (let i = body.readInt16BE(0); i > 0; i--) {
    const len = body.readInt32BE(off);
    off += 4;
    if (len < 0) row.push(null);
    else { row.push(body.toString("utf8", off, off + len)); off += len; }
  }
  return row;
}

/** Runs a simple query and reads up to ReadyForQuery; text values only. */
export async function simpleQuery(conn: RawPg, sql: string, timeoutMs = 15_000): Promise<QueryResult> {
  await conn.write(queryMessage(sql));
  const messages = await conn.readUntil("Z", timeoutMs, false);
  const result: QueryResult = { rows: [], messages };
  for (const m of messages) {
    if (m.type === "D") result.rows.push(dataRowTexts(m.body));
    else if (m.type === "C") result.tag = m.body.toString("utf8", 0, m.body.length - 1);
    else if (m.type === "E") result.error = errorFields(m.body);
  }
  return result;
}
