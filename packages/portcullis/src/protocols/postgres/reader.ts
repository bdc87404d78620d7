/**
 * Pull-style reading for the handshake phases (startup, authentication, the gateway's own login
 * to a target), where each step awaits one packet. Once the session relays traffic, the socket is
 * detached from this reader and any bytes it had buffered are handed on.
 */
import type { Socket } from "node:net";
import type { BufferLease } from "../../core/connection-limits.js";
import { PortcullisError } from "../../errors.js";
import { type Frame, takeStartupPacket } from "./framer.js";
import { MAX_STARTUP_PACKET } from "./messages.js";

type Take<T> = (buf: Buffer) => { value: T; rest: Buffer } | undefined;

export class HandshakeReader {
  private buf: Buffer = Buffer.alloc(0);
  private waiter?: { take: Take<unknown>; resolve: (v: unknown) => void; reject: (e: Error) => void };
  private failure?: Error;
  private readonly onData = (chunk: Buffer) => {
    // A handshake exchanges a few small messages: more unread bytes than one message can hold is abuse.
    if (this.buf.length + chunk.length > 2 * this.maxMessageSize + 1024) {
      this.fail(new PortcullisError("E_PROTOCOL", "too much data during the handshake"));
      this.detach();
      this.socket.pause();
      return;
    }
    if (this.lease && !this.lease.hold(this.buf.length + chunk.length)) {
      this.fail(new PortcullisError("E_OUT_OF_MEMORY", "out of memory: the gateway's buffer budget is exhausted"));
      this.detach();
      this.socket.pause();
      return;
    }
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    this.pump();
  };
  private readonly onEnd = () => this.fail(new PortcullisError("E_PROTOCOL", "connection closed during handshake"));
  private readonly onError = (err: Error) => this.fail(new PortcullisError("E_PROTOCOL", `socket error during handshake: ${err.message}`));

  /**
   * `timeoutMs` bounds each read; without it the caller's own deadline governs (the agent side has
   * one over the whole pre-authentication phase). A `lease` charges what is buffered to a budget.
   */
  constructor(
    private readonly socket: Socket,
    private readonly maxMessageSize: number,
    private readonly timeoutMs?: number,
    private readonly lease?: BufferLease,
  ) {
    socket.on("data", this.onData);
    socket.on("end", this.onEnd);
    socket.on("close", this.onEnd);
    socket.on("error", this.onError);
  }

  /** Bytes received and not yet consumed. */
  get pending(): number {
    return this.buf.length;
  }

  readStartupPacket(): Promise<Buffer> {
    return this.read((buf) => {
      const r = takeStartupPacket(buf, MAX_STARTUP_PACKET);
      return r && { value: r.packet, rest: r.rest };
    });
  }

  /** Reads one typed message; with `expect`, any other type is refused at its first byte. */
  readFrame(expect?: number): Promise<Frame> {
    return this.read((buf) => {
      if (expect !== undefined && buf.length > 0 && buf[0] !== expect) {
        throw new PortcullisError("E_PROTOCOL", `expected message type '${String.fromCharCode(expect)}', got 0x${buf[0]!.toString(16)}`);
      }
      if (buf.length < 5) return undefined;
      const len = buf.readInt32BE(1);
      if (len < 4 || len + 1 > this.maxMessageSize) throw new PortcullisError("E_PROTOCOL", `invalid message length ${len}`);
      if (buf.length < len + 1) return undefined;
      return { value: { type: buf[0]!, raw: buf.subarray(0, len + 1) }, rest: buf.subarray(len + 1) };
    });
  }

  /** Reads exactly one byte (the answer to SSLRequest). */
  readByte(): Promise<number> {
    return this.read((buf) => (buf.length >= 1 ? { value: buf[0]!, rest: buf.subarray(1) } : undefined));
  }

  /** Stops reading; returns the bytes received beyond what was consumed. */
  detach(): Buffer {
    this.socket.off("data", this.onData);
    this.socket.off("end", this.onEnd);
    this.socket.off("close", this.onEnd);
    this.socket.off("error", this.onError);
    const rest = this.buf;
    this.buf = Buffer.alloc(0);
    this.lease?.release();
    return rest;
  }

  private read<T>(take: Take<T>): Promise<T> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise<T>((resolve, reject) => {
      const timer = this.timeoutMs === undefined
        ? undefined
        : setTimeout(() => this.fail(new PortcullisError("E_PROTOCOL", "handshake timed out")), this.timeoutMs);
      this.waiter = {
        take: take as Take<unknown>,
        resolve: (v) => { clearTimeout(timer); resolve(v as T); },
        reject: (e) => { clearTimeout(timer); reject(e); },
      };
      this.pump();
    });
  }

  private pump(): void {
    const w = this.waiter;
    if (!w) return;
    let got: { value: unknown; rest: Buffer } | undefined;
    try {
      got = w.take(this.buf);
    } catch (err) {
      this.fail(err as Error);
      return;
    }
    if (!got) return;
    this.buf = got.rest;
    this.lease?.hold(this.buf.length);
    this.waiter = undefined;
    w.resolve(got.value);
  }

  private fail(err: Error): void {
    this.failure ??= err;
    // Nothing buffered is read after a failure (the socket ended, or the handshake is refused).
    this.lease?.release();
    const w = this.waiter;
    this.waiter = undefined;
    w?.reject(this.failure);
  }
}
