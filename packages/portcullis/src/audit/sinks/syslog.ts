/**
 * RFC 5424 syslog over TCP with RFC 6587 octet counting, or over TLS (RFC 5425), for SIEMs.
 * Octet counting frames each message by its length, so nothing in a record can split or forge a
 * message. The transport has no acknowledgement: a delivery counts once the bytes are handed to
 * the kernel, so records written just before the collector drops the connection can be lost.
 */
import { connect as netConnect, isIP, type Socket } from "node:net";
import { hostname as osHostname } from "node:os";
import { connect as tlsConnect } from "node:tls";
import type { ExportedRecord } from "../chain.js";
import type { AuditSink, SyslogSinkConfig } from "./types.js";

/** Structured-data ID under the documentation enterprise number (RFC 5612). */
export const SD_ID = "portcullis@32473";
const SEVERITY_INFORMATIONAL = 6;
const FACILITY_AUTHPRIV = 10;

export interface SyslogHeader {
  facility: number;
  hostname: string;
  appName: string;
  procId: string;
}

export interface SyslogSinkOptions {
  connectTimeoutMs?: number;
  /** A collector that stops reading would otherwise hold a delivery forever. */
  writeTimeoutMs?: number;
}

export class SyslogSink implements AuditSink {
  private readonly header: SyslogHeader;
  private readonly target: string;
  private readonly connectTimeoutMs: number;
  private readonly writeTimeoutMs: number;
  private socket: Socket | undefined;
  private connecting: Promise<Socket> | undefined;
  private closed = false;

  constructor(readonly name: string, private readonly cfg: SyslogSinkConfig, opts: SyslogSinkOptions = {}) {
    const facility = cfg.facility ?? FACILITY_AUTHPRIV;
    if (!Number.isInteger(facility) || facility < 0 || facility > 23) throw new RangeError(`syslog sink ${name}: facility must be 0..23`);
    this.header = {
      facility,
      hostname: headerField(osHostname(), 255),
      appName: headerField(cfg.app_name ?? "portcullis", 48),
      procId: String(process.pid),
    };
    this.target = `${cfg.tls ? "tls" : "tcp"}://${cfg.host}:${cfg.port}`;
    this.connectTimeoutMs = opts.connectTimeoutMs ?? 10_000;
    this.writeTimeoutMs = opts.writeTimeoutMs ?? 30_000;
  }

  /** Whether a connection is open now (it is opened on the next delivery otherwise). */
  get connected(): boolean {
    return this.socket !== undefined && !this.socket.destroyed;
  }

  async deliver(records: ExportedRecord[]): Promise<void> {
    if (this.closed) throw new Error(`syslog ${this.target}: sink closed`);
    if (records.length === 0) return;
    const payload = records.map((r) => octetCounted(formatSyslogMessage(r, this.header))).join("");
    const socket = await this.connect();
    await this.write(socket, payload);
  }

  async close(): Promise<void> {
    this.closed = true;
    const socket = this.socket;
    this.socket = undefined;
    if (!socket || socket.destroyed) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => socket.destroy(), 1000).unref();
      socket.once("close", () => {
        clearTimeout(timer);
        resolve();
      });
      socket.end();
    });
  }

  private connect(): Promise<Socket> {
    if (this.socket && !this.socket.destroyed) return Promise.resolve(this.socket);
    this.connecting ??= this.open().finally(() => {
      this.connecting = undefined;
    });
    return this.connecting;
  }

  private open(): Promise<Socket> {
    const { host, port, tls, ca } = this.cfg;
    return new Promise((resolve, reject) => {
      const socket = tls
        // SNI takes names only; the certificate is still checked against an IP host.
        ? tlsConnect({ host, port, rejectUnauthorized: true, minVersion: "TLSv1.2", ...(ca ? { ca } : {}), ...(isIP(host) ? {} : { servername: host }) })
        : netConnect({ host, port });
      const timer = setTimeout(() => socket.destroy(new Error("connect timed out")), this.connectTimeoutMs);
      const fail = (err: Error): void => {
        clearTimeout(timer);
        reject(new Error(`syslog ${this.target}: ${err.message}`));
      };
      socket.once("error", fail);
      socket.once(tls ? "secureConnect" : "connect", () => {
        clearTimeout(timer);
        socket.off("error", fail);
        if (this.closed) {
          socket.destroy();
          reject(new Error(`syslog ${this.target}: sink closed`));
          return;
        }
        socket.setKeepAlive(true, 60_000);
        socket.setNoDelay(true);
        // Errors reach the pending write's callback; without a listener they would crash the process.
        socket.on("error", () => undefined);
        socket.on("close", () => {
          if (this.socket === socket) this.socket = undefined;
        });
        // Collectors do not talk back; drain anything they send so it cannot fill buffers.
        socket.resume();
        this.socket = socket;
        resolve(socket);
      });
    });
  }

  private write(socket: Socket, payload: string): Promise<void> {
    return new Promise((resolve, reject) => {
      let settled = false;
      const fail = (reason: string): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        socket.off("close", onClose);
        // The frame may be cut mid-way: only a fresh connection can carry the retry.
        socket.destroy();
        reject(new Error(`syslog ${this.target}: ${reason}`));
      };
      const onClose = (): void => fail("connection closed during write");
      const timer = setTimeout(() => fail("write timed out"), this.writeTimeoutMs);
      socket.once("close", onClose);
      socket.write(payload, "utf8", (err) => {
        // Node calls back without an error for a write cut short by destroy(), so check the socket too.
        if (err || socket.destroyed) {
          fail(err?.message ?? "connection closed during write");
          return;
        }
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        socket.off("close", onClose);
        resolve();
      });
    });
  }
}

/** `<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID [SD] MSG`, MSG being the record as JSON. */
export function formatSyslogMessage(r: ExportedRecord, h: SyslogHeader): string {
  const pri = h.facility * 8 + SEVERITY_INFORMATIONAL;
  const sd = `[${SD_ID} seq="${escapeSdValue(String(r.seq))}" hash="${escapeSdValue(r.hash)}"]`;
  return `<${pri}>1 ${r.at} ${h.hostname} ${h.appName} ${h.procId} ${headerField(r.type, 32)} ${sd} ${asciiJson(r)}`;
}

/** RFC 5424 §6.3.3: `"`, `\` and `]` in a PARAM-VALUE are escaped with a backslash. */
export function escapeSdValue(value: string): string {
  return value.replace(/["\\\]]/g, (c) => `\\${c}`);
}

/** RFC 6587 §3.4.1: `MSG-LEN SP SYSLOG-MSG`, the length in octets. */
export function octetCounted(message: string): string {
  return `${Buffer.byteLength(message, "utf8")} ${message}`;
}

/** Header fields are 1..max printable US-ASCII characters without spaces; "-" is the nil value. */
function headerField(value: string, max: number): string {
  const clean = value.replace(/[^\x21-\x7e]/g, "_").slice(0, max);
  return clean === "" ? "-" : clean;
}

/**
 * JSON with every non-ASCII character as a \u escape: the MSG is then plain ASCII, so collectors
 * need not guess its encoding (RFC 5424 wants a BOM for UTF-8), and JSON.parse gives back the record.
 */
function asciiJson(value: unknown): string {
  return JSON.stringify(value).replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
}
